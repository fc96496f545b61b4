import { describe, expect, it } from 'vitest';
import { checkCapacity, deploymentPool } from '../../src/wizard/capacity.js';
import { withoutUnsetFlags } from '../../src/runbook/render.js';

const set = (value: number) => ({ value, from: 'set' as const });

describe('checkCapacity: replicas × (pool_size + max_overflow) against usable connections', () => {
  it('oversubscribed: the issue example', () => {
    const c = checkCapacity({
      replicas: set(6),
      poolSize: set(20),
      maxOverflow: set(10),
      usable: set(37),
    });
    expect(c).toMatchObject({ demand: 180, usable: 37, oversubscribed: true, unknown: [] });
    expect(c.arithmetic).toBe('6 × (20 + 10) = 180 > 37 usable');
  });

  it('exactly full fits; one more does not', () => {
    const at = (usable: number) =>
      checkCapacity({
        replicas: set(3),
        poolSize: set(4),
        maxOverflow: set(2),
        usable: set(usable),
      });
    expect(at(18)).toMatchObject({
      oversubscribed: false,
      arithmetic: '3 × (4 + 2) = 18 ≤ 18 usable',
    });
    expect(at(17).oversubscribed).toBe(true);
  });

  it('an unknown factor proves nothing: no verdict, the unknown named with the flag', () => {
    const c = checkCapacity({
      replicas: set(2),
      poolSize: { from: 'unknown', why: 'DATABASE_POOL_SIZE is not in the environment' },
      maxOverflow: set(10),
      usable: { from: 'unknown' },
    });
    expect(c.oversubscribed).toBeUndefined();
    expect(c.demand).toBeUndefined();
    expect(c.arithmetic).toBe('2 × (? + 10) = ? vs ? usable');
    expect(c.unknown).toEqual([
      'pool_size: DATABASE_POOL_SIZE is not in the environment (--set pool_size=N)',
      'usable connections: the database was not measured',
    ]);
  });
});

describe('deploymentPool: the numbers a Deployment declares', () => {
  const doc = (spec: unknown) => ({ kind: 'Deployment', spec });
  it('spec.replicas and the containers’ literal env', () => {
    const env = [
      { name: 'OTHER', value: 'x' },
      { name: 'DATABASE_POOL_SIZE', value: '20' },
      { name: 'DATABASE_POOL_MAX_OVERFLOW', value: '10' },
    ];
    expect(
      deploymentPool(doc({ replicas: 4, template: { spec: { containers: [{ env }] } } })),
    ).toEqual({ replicas: 4, poolSize: 20, maxOverflow: 10, why: {} });
  });

  it('Kubernetes defaults replicas to 1; valueFrom, garbage and absence are said, not guessed', () => {
    const env = [
      { name: 'DATABASE_POOL_SIZE', valueFrom: { configMapKeyRef: { name: 'a', key: 'b' } } },
      { name: 'DATABASE_POOL_MAX_OVERFLOW', value: 'ten' },
    ];
    const pool = deploymentPool(doc({ template: { spec: { containers: [{ env }] } } }));
    expect(pool.replicas).toBe(1);
    expect(pool.poolSize).toBeUndefined();
    expect(pool.why.poolSize).toMatch(/valueFrom/);
    expect(pool.why.maxOverflow).toMatch(/"ten", not a whole number/);
    expect(deploymentPool(doc({})).why.poolSize).toMatch(/not in the deployment's environment/);
  });

  it('anything but a Deployment (kubectl printed an empty List) is no numbers', () => {
    const pool = deploymentPool({ kind: 'List', items: [] });
    expect(pool.replicas).toBeUndefined();
    expect(pool.why.replicas).toMatch(/List, not a Deployment/);
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
