import { describe, expect, it } from 'vitest';
import { bufferOf, capacityVerdict, checkCapacity, surgeCount } from '../../src/wizard/capacity.js';
import {
  capacityAfter,
  capacityCaution,
  capacityLine,
} from '../../src/executors/capacity-guard.js';
import type { KubernetesChangeStep } from '../../src/runbook/types.js';
import type { MitigationContext } from '../../src/wizard/mitigation.js';
import { capacityOf } from '../../src/wizard/prevent.js';
import type { StepOutcome } from '../../src/wizard/model.js';
import { normalizeEvent } from '../../src/transcript/normalize.js';
import { withoutUnsetFlags } from '../../src/runbook/render.js';

const set = (value: number) => ({ value, from: 'set' as const });
const noSurge = { count: 0, from: 'set' as const };
const inputs = (replicas: number, pool: number, overflow: number, usable: number, buffer = 0) => ({
  replicas: set(replicas),
  poolSize: set(pool),
  maxOverflow: set(overflow),
  surge: noSurge,
  usable: set(usable),
  buffer: set(buffer),
});

describe('checkCapacity: (replicas + surge) × (pool_size + max_overflow) ≤ usable − buffer', () => {
  it('oversubscribed: the issue example, with the surge and the buffer in one line', () => {
    const c = checkCapacity({
      ...inputs(6, 20, 10, 37, 5),
      surge: { count: 1, from: 'kubectl' },
    });
    expect(c).toMatchObject({
      demand: 210,
      usable: 37,
      buffer: 5,
      budget: 32,
      surge: 1,
      oversubscribed: true,
      over_usable: true,
      unknown: [],
    });
    expect(c.arithmetic).toBe('(6 + 1) × (20 + 10) = 210 > 37 usable − 5 buffer');
    expect(c.sources).toMatchObject({ replicas: 'set', surge: 'kubectl', usable: 'set' });
    expect(capacityVerdict(c)).toBe(
      '(6 + 1) × (20 + 10) = 210 > 37 usable − 5 buffer: oversubscribes the database by 173 connections past its 37 usable (RUNBOOK-006 Prevention 1)',
    );
  });

  it('exactly usable − buffer fits; one more does not, and eating the buffer is not past usable', () => {
    const at = (usable: number) => checkCapacity(inputs(3, 4, 2, usable, 2));
    expect(at(20)).toMatchObject({
      oversubscribed: false,
      arithmetic: '(3 + 0) × (4 + 2) = 18 ≤ 20 usable − 2 buffer',
    });
    expect(at(19)).toMatchObject({ oversubscribed: true, over_usable: false });
    expect(capacityVerdict(at(19))).toContain('leaves 1 connections free, less than the 2 buffer');
  });

  it("the surge as a percent rounds up, as Kubernetes' maxSurge does", () => {
    expect(surgeCount(6, 25)).toBe(2);
    expect(surgeCount(4, 25)).toBe(1);
    expect(surgeCount(3, 0)).toBe(0);
    const c = checkCapacity({
      ...inputs(6, 20, 10, 97, 10),
      surge: { percent: 25, from: 'default' },
    });
    expect(c.arithmetic).toBe('(6 + 2) × (20 + 10) = 240 > 97 usable − 10 buffer');
    expect(c.derivation).toEqual(['surge: ceil(6 × 25% rollout_surge) = 2 pods (runbook default)']);
  });

  it('only the per-pod total known (Prometheus): one number in place of (pool_size + max_overflow)', () => {
    const c = checkCapacity({
      ...inputs(3, 0, 0, 97, 10),
      poolSize: { from: 'unknown' },
      maxOverflow: { from: 'unknown' },
      perPod: { value: 30, from: 'prometheus' },
    });
    expect(c.arithmetic).toBe('(3 + 0) × 30 = 90 > 97 usable − 10 buffer');
    expect(c).toMatchObject({ per_pod: 30, unknown: [] });
    expect(c.sources?.per_pod).toBe('prometheus');
  });

  it('an unknown number proves nothing: no verdict, the unknown named with the flag', () => {
    const c = checkCapacity({
      ...inputs(2, 0, 10, 0),
      poolSize: { from: 'unknown', why: 'DATABASE_POOL_SIZE is not in the environment' },
      usable: { from: 'unknown' },
    });
    expect(c.oversubscribed).toBeUndefined();
    expect(c.demand).toBeUndefined();
    expect(c.arithmetic).toBe('(2 + 0) × (? + 10) = ? vs ? usable − 0 buffer');
    expect(c.unknown).toEqual([
      'pool_size: DATABASE_POOL_SIZE is not in the environment (--set pool_size=N)',
      'usable connections: the database was not measured',
    ]);
  });
});

describe('bufferOf: one buffer, in connections', () => {
  it('capacity_buffer is the count; capacity_headroom, when set, a share of usable; the larger wins', () => {
    expect(bufferOf({ capacity_buffer: 10 }, 97).buffer).toEqual({ value: 10, from: 'default' });
    expect(bufferOf({ capacity_buffer: 5 }, 97, ['capacity_buffer']).buffer).toEqual({
      value: 5,
      from: 'set',
    });
    // 20% of 97 = 19.4 → 20 > 10.
    const pct = bufferOf({ capacity_buffer: 10, capacity_headroom: 20 }, 97);
    expect(pct.buffer).toEqual({ value: 20, from: 'set' });
    expect(pct.text).toBe('buffer: capacity_headroom 20% of 97 usable = 20 (≥ capacity_buffer 10)');
    // 5% of 97 = 5 < 10: the count stands.
    expect(bufferOf({ capacity_buffer: 10, capacity_headroom: 5 }, 97).buffer.value).toBe(10);
    // A share of an unknown number is unknown, not 0.
    expect(bufferOf({ capacity_buffer: 10, capacity_headroom: 5 }, undefined).buffer.value).toBe(
      undefined,
    );
  });
});

describe('the capacity guard: what blocks (capacityAfter, the Deployment read through kubectl)', () => {
  // The Deployment as it runs: 6 × (20 + 10), maxSurge 25 % (→ 2).
  const deployment = (env: Record<string, unknown>[] = POOL_ENV) => ({
    kind: 'Deployment',
    metadata: { name: 'api' },
    spec: {
      replicas: 6,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%' } },
      template: { spec: { containers: [{ name: 'api', env }] } },
    },
  });
  const POOL_ENV = [
    { name: 'DATABASE_POOL_SIZE', value: '20' },
    { name: 'DATABASE_POOL_MAX_OVERFLOW', value: '10' },
  ];
  const ctx = (values: Record<string, number>, json: unknown = deployment()) =>
    ({
      values: { deployment: 'api', capacity_buffer: 10, rollout_surge: 25, ...values },
      given: Object.keys(values),
      targets: {
        has: () => true,
        kubernetes: async () => ({ run: async () => ({ stdout: JSON.stringify(json) }) }),
      },
      runbook: { diagnose: [] },
    }) as unknown as MitigationContext;
  const step = (id: string, command: string[]) =>
    ({
      id,
      kind: 'change',
      target: 'kubernetes',
      commands: [command],
    }) as unknown as KubernetesChangeStep;
  const scale = step('scale-app', ['scale', 'deployment/{deployment}', '--replicas={replicas}']);
  const raisePool = step('raise-pool-size', [
    'set',
    'env',
    'deployment/{deployment}',
    'DATABASE_POOL_SIZE={pool_size}',
    'DATABASE_POOL_MAX_OVERFLOW={max_overflow}',
  ]);
  const usable = (n: number) => ({ usable_connections: n }) as never;

  it('a rise past the budget is a caution; a scale-down is never one, even still oversubscribed', async () => {
    const up = await capacityAfter(scale, ctx({ replicas: 8 }), usable(197));
    expect(capacityCaution(up)).toBe(
      '(8 + 2) × (20 + 10) = 300 > 197 usable − 10 buffer: oversubscribes the database',
    );
    const down = await capacityAfter(scale, ctx({ replicas: 3 }), usable(37));
    expect(capacityCaution(down)).toBeUndefined();
    expect(capacityLine(down)).toContain('does not raise the demand (now 240): not blocked');
  });

  it('a --set of a factor the change does not set never stands in for the Deployment', async () => {
    // raise-pool-size sets the pool; the replicas are the Deployment's 6, not the --set 2.
    const c = await capacityAfter(
      raisePool,
      ctx({ pool_size: 50, max_overflow: 10, replicas: 2 }),
      usable(197),
    );
    expect(c.arithmetic).toBe('(6 + 2) × (50 + 10) = 480 > 197 usable − 10 buffer');
    expect(c.lowers_demand).toBe(false);
    expect(capacityCaution(c)).toBeDefined();
    // scale-app sets the replicas; the pool is the Deployment's 20 + 10, not the --set 1 + 0.
    const s = await capacityAfter(
      scale,
      ctx({ replicas: 7, pool_size: 1, max_overflow: 0 }),
      usable(197),
    );
    expect(s.arithmetic).toBe('(7 + 2) × (20 + 10) = 270 > 197 usable − 10 buffer');
  });

  it('a scale-down is not blocked even when the pool cannot be read (valueFrom)', async () => {
    const hidden = deployment([{ name: 'DATABASE_POOL_SIZE', valueFrom: { configMapKeyRef: {} } }]);
    const down = await capacityAfter(scale, ctx({ replicas: 3 }, hidden), usable(37));
    expect(down.lowers_demand).toBe(true);
    expect(capacityCaution(down)).toBeUndefined();
  });

  it('the Deployment unreadable: a rise is not assumed to be a fall', async () => {
    const c = await capacityAfter(scale, ctx({ replicas: 6 }, { kind: 'Status' }), usable(37));
    expect(c.lowers_demand).toBeUndefined();
    expect(capacityCaution(c)).toBeDefined();
  });
});

describe("prevent's capacity audit: --set > kubectl Deployment > Prometheus, each source named", () => {
  const outcome = (id: string, rows: Record<string, unknown>[]): StepOutcome =>
    ({ id, title: id, kind: 'promql', status: 'ok', durationMs: 0, findings: [], rows }) as never;
  const deployment = outcome('prevent-deployment', [
    { replicas: 6, pool_size: 20, max_overflow: 10, max_surge: '25%', unreadable: '' },
  ]);
  const pools = outcome('app-pool-max', [{ max: 30 }, { max: 30 }, { max: 30 }]);
  const values = { capacity_buffer: 10, rollout_surge: 25, replicas: 2 };

  it('the Deployment wins over Prometheus; --set wins over the Deployment', () => {
    const fromKube = capacityOf([], values, { usable_connections: 97 }, [deployment, pools]);
    expect(fromKube.finding).toMatchObject({ id: 'capacity-oversubscribed', severity: 'critical' });
    expect(fromKube.finding.message).toMatch(
      /^\(6 \+ 2\) × \(20 \+ 10\) = 240 > 97 usable − 10 buffer: /,
    );
    expect(fromKube.finding.message).toContain(
      'from: replicas 6 (kubectl Deployment), surge 2 (kubectl Deployment), pool_size 20 (kubectl Deployment), max_overflow 10 (kubectl Deployment), usable 97 (the server), buffer 10 (runbook default)',
    );
    const given = capacityOf(['replicas'], values, { usable_connections: 97 }, [deployment, pools]);
    expect(given.capacity).toMatchObject({ replicas: 2, surge: 1, demand: 90 });
    expect(given.capacity?.sources).toMatchObject({ replicas: 'set', pool_size: 'kubectl' });
    expect(given.finding.id).toBe('capacity-no-buffer');
  });

  it('Prometheus alone: its replicas and its per-replica maximum', () => {
    const r = capacityOf([], values, { usable_connections: 200 }, [pools]);
    expect(r.capacity).toMatchObject({ replicas: 3, surge: 1, per_pod: 30, demand: 120 });
    expect(r.finding).toMatchObject({ id: 'capacity-ok', severity: 'info' });
    expect(r.finding.message).toContain(
      'per_pod 30 (Prometheus db_pool_connections_max per replica)',
    );
  });

  it('a pool_size given beside an unknown max_overflow is not replaced by Prometheus: unknown', () => {
    const r = capacityOf(['pool_size'], { ...values, pool_size: 20 }, { usable_connections: 97 }, [
      pools,
    ]);
    expect(r.finding.id).toBe('capacity-unknown');
    expect(r.finding.message).toContain('max_overflow: no Deployment read');
  });

  it('nothing to go on: says which flags give the numbers', () => {
    const r = capacityOf([], values, { usable_connections: 97 }, []);
    expect(r.capacity).toBeUndefined();
    expect(r.finding.message).toMatch(/--kubectl .*--prometheus .*--set replicas=N/);
  });
});

describe('withoutUnsetFlags: an optional flag waits for its parameter', () => {
  const args = ['rollout', 'undo', 'deployment/{deployment}', '--to-revision={revision}'];
  it('left out while the parameter has no value, kept once it has one', () => {
    expect(withoutUnsetFlags(args, (n) => n !== 'revision')).toEqual(args.slice(0, 3));
    expect(withoutUnsetFlags(args, () => true)).toEqual(args);
  });
  it('only a flag whose whole value is one parameter is optional', () => {
    const mixed = ['--replicas=x{replicas}', '{revision}'];
    expect(withoutUnsetFlags(mixed, () => false)).toEqual(mixed);
  });
});

describe('a transcript written before the buffer still reads', () => {
  it('its oversubscribed capacity exports as past the usable connections, not a negative buffer', () => {
    const event = normalizeEvent({
      type: 'action',
      at: '2026-11-30T03:41:00.000Z',
      id: 'scale-app',
      title: 'Scale the application',
      kind: 'change',
      executed: false,
      dryRun: false,
      declined: true,
      victims: [],
      spared: [],
      results: [],
      stoppedEarly: false,
      capacity: {
        replicas: 6,
        pool_size: 20,
        max_overflow: 10,
        demand: 180,
        usable: 37,
        oversubscribed: true,
        arithmetic: '6 × (20 + 10) = 180 > 37 usable',
        unknown: [],
      },
    });
    const capacity = (event as { capacity?: Parameters<typeof capacityVerdict>[0] }).capacity!;
    expect(capacityVerdict(capacity)).toBe(
      '6 × (20 + 10) = 180 > 37 usable: oversubscribes the database by 143 connections past its 37 usable (RUNBOOK-006 Prevention 1)',
    );
  });
});
