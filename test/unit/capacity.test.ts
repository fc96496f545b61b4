import { describe, expect, it } from 'vitest';
import { bufferOf, capacityVerdict, checkCapacity, surgeCount } from '../../src/wizard/capacity.js';
import { capacityCaution, capacityLine } from '../../src/executors/capacity-guard.js';
import { capacityOf } from '../../src/wizard/prevent.js';
import type { StepOutcome } from '../../src/wizard/model.js';
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

describe('the capacity guard: what blocks', () => {
  const guard = (after: number, now: number | undefined, usable = 37) => {
    const c = checkCapacity(inputs(after, 20, 10, usable, 5));
    const current = now === undefined ? undefined : checkCapacity(inputs(now, 20, 10, usable, 5));
    return {
      ...c,
      current: { arithmetic: current?.arithmetic ?? '?', demand: current?.demand },
      ...(current && { lowers_demand: c.demand! <= current.demand! }),
    };
  };
  it('a rise past the budget is a caution; a scale-down is never one, even still oversubscribed', () => {
    expect(capacityCaution(guard(6, 3))).toBe(
      '(6 + 0) × (20 + 10) = 180 > 37 usable − 5 buffer: oversubscribes the database',
    );
    const down = guard(3, 6);
    expect(capacityCaution(down)).toBeUndefined();
    expect(capacityLine(down)).toContain('does not raise the demand (now 180): not blocked');
  });
  it('the demand now unknown (the Deployment unreadable): a rise is not assumed to be a fall', () => {
    expect(capacityCaution(guard(6, undefined))).toMatch(/oversubscribes the database/);
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
