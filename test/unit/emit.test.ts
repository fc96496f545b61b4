import { describe, expect, it } from 'vitest';
import { capacityOf, type EmitFacts } from '../../src/commands/emit-capacity.js';
import { renderPgbouncer } from '../../src/commands/emit-files.js';
import { parseEmitOptions } from '../../src/commands/emit.js';
import type { StepOutcome } from '../../src/wizard/model.js';

const facts = (over: Partial<EmitFacts> = {}): EmitFacts => ({
  engine: 'postgres',
  product: 'PostgreSQL',
  version: '16.4',
  host: 'db',
  port: 5432,
  user: 'app',
  database: 'shop',
  maxConnections: 100,
  superuserReserved: 3,
  reserved: 2,
  usable: 95,
  ...over,
});

describe('the capacity formula', () => {
  it('keeps sizes that fit, counting the rollout surge', () => {
    // 95 − 10 = 85; 3 + ceil(0.75) = 4 instances; 4 × (14 + 6) = 80 ≤ 85.
    const cap = capacityOf(facts(), { replicas: 3, pool_size: 14, max_overflow: 6 });
    expect(cap).toMatchObject({
      peakInstances: 4,
      budget: 85,
      fits: true,
      poolSize: 14,
      maxOverflow: 6,
    });
    expect(cap.lines[0]).toBe(
      'usable connections: max_connections 100 − superuser_reserved_connections 3 − reserved_connections 2 = 95',
    );
    // The one formula's line, as the guard and prevent's audit print it.
    expect(cap.lines[3]).toBe('configured: (3 + 1) × (14 + 6) = 80 ≤ 95 usable − 10 buffer: fits');
  });

  it('capacity_headroom raises the buffer to its share of usable when that is larger', () => {
    // ceil(95 × 20%) = 19 > 10: budget 76 < 80.
    const cap = capacityOf(facts(), {
      replicas: 3,
      pool_size: 14,
      max_overflow: 6,
      capacity_buffer: 10,
      capacity_headroom: 20,
    });
    expect(cap).toMatchObject({ buffer: 19, budget: 76, fits: false });
    expect(cap.lines[1]).toBe(
      'budget for the pools: 95 usable − 19 buffer = 76 (buffer: capacity_headroom 20% of 95 usable = 19 (≥ capacity_buffer 10))',
    );
  });

  it("scales the seed's 20 + 10 down, keeping its 2:1 split, when they oversubscribe", () => {
    // 4 × 30 = 120 > 85; floor(85 / 4) = 21 → 14 + 7.
    const cap = capacityOf(facts(), { replicas: 3, pool_size: 20, max_overflow: 10 });
    expect(cap).toMatchObject({ fits: false, poolSize: 14, maxOverflow: 7, perInstance: 21 });
    expect(cap.peakInstances * cap.perInstance).toBeLessThanOrEqual(cap.budget);
  });

  it('says when not one connection per instance fits', () => {
    const cap = capacityOf(facts({ usable: 12 }), { replicas: 10, capacity_buffer: 10 });
    expect(cap).toMatchObject({ impossible: true, poolSize: 1, maxOverflow: 0 });
    expect(cap.lines.at(-1)).toContain('not one connection per instance fits');
  });
});

describe("emit's numbers: prevent's resolution (--set > Deployment > Prometheus), then the defaults, said", () => {
  const outcome = (id: string, rows: Record<string, unknown>[]): StepOutcome =>
    ({ id, title: id, kind: 'promql', status: 'ok', durationMs: 0, findings: [], rows }) as never;
  const pools = outcome('app-pool-max', [{ max: 24 }, { max: 24 }, { max: 24 }, { max: 24 }]);
  const values = { replicas: 3, pool_size: 20, max_overflow: 10, rollout_surge: 25 };

  it("Prometheus alone: its 4 replicas and its 24 per pod, split in the default's 20:10, the split said", () => {
    const cap = capacityOf(facts(), values, [], [pools]);
    // (4 + 1) × 24 = 120 > 85: floor(85 / 5) = 17 → 11 + 6.
    expect(cap).toMatchObject({
      replicas: 4,
      peakInstances: 5,
      configured: { poolSize: 16, maxOverflow: 8 },
      sources: { replicas: 'prometheus', pool_size: 'prometheus', surge: 'default' },
    });
    expect(cap.defaults.map((d) => d.name)).toEqual(['pool_size/max_overflow', 'rollout_surge']);
    expect(cap.warning).toBe(
      "sized from the runbook's example defaults, not this setup: the split of 24 (Prometheus db_pool_connections_max per replica) into pool_size 16 + max_overflow 8, in the runbook default's 20:10, rollout_surge 25%; pass --set pool_size=N --set max_overflow=N --set rollout_surge=PERCENT for the real numbers",
    );
  });

  it('every number given: no defaults, no warning', () => {
    const cap = capacityOf(facts(), values, [
      'replicas',
      'pool_size',
      'max_overflow',
      'rollout_surge',
    ]);
    expect(cap.defaults).toEqual([]);
    expect(cap.warning).toBeUndefined();
    expect(cap.sourceLines).toEqual([
      'numbers from: replicas 3 (--set), surge 1 (--set), pool_size 20 (--set), max_overflow 10 (--set), usable 95 (the server), buffer 10 (runbook default)',
    ]);
  });
});

describe('pgbouncer.ini', () => {
  it('keeps default_pool_size + reserve_pool_size within a small budget and quotes odd names', () => {
    const f = facts({ usable: 17, database: 'my db' });
    const ini = renderPgbouncer(f, { capacity_buffer: 10 }, capacityOf(f, { capacity_buffer: 10 }));
    // 17 − 10 = 7: reserve min(5, floor(7/4)) = 1, pool 6.
    expect(ini).toContain('default_pool_size = 6\n');
    expect(ini).toContain('reserve_pool_size = 1\n');
    expect(ini).toContain('max_db_connections = 7\n');
    expect(ini).toContain(`"my db" = host=db port=5432 dbname='my db'`);
  });
});

describe('parseEmitOptions', () => {
  it.each([
    [{ emit: 'grafana' }, '--emit grafana: expected alerts, pgbouncer, pool-config'],
    [{ emit: 'alerts', out: ' ' }, '-o, --out: expected a file name'],
  ])('%o → %s', (flags, message) => {
    expect(() => parseEmitOptions(flags)).toThrow(message);
  });
  it('takes -o and --yes', () => {
    expect(parseEmitOptions({ emit: 'pgbouncer', out: 'x.ini', yes: true })).toMatchObject({
      kind: 'pgbouncer',
      out: 'x.ini',
      yes: true,
    });
  });
});
