/**
 * The numbers `poolctl prevent --emit` fills its files with, and the capacity formula of the seeds
 * (RUNBOOK-006 Prevention 1), from src/wizard/capacity.ts: (replicas + surge) × (pool_size +
 * max_overflow) ≤ usable connections − buffer, counting the extra instances a rolling update
 * starts, each with a full pool.
 */
import type { Engine, ParameterValues } from '../runbook/types.js';
import { bufferOf, checkCapacity, type CapacitySource } from '../wizard/capacity.js';

/** What the target told poolctl, plus where it is (never its password). */
export interface EmitFacts {
  engine: Engine;
  /** PostgreSQL, MySQL, MariaDB. */
  product: string;
  version: string;
  host: string;
  port: number;
  user: string;
  /** The target database (PostgreSQL's current_database(); MySQL's DATABASE(), may be empty). */
  database: string;
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
  /** max_connections less the reserved slots: what an ordinary account can use. */
  usable: number;
  /** PostgreSQL's password_encryption: scram-sha-256 or md5. */
  passwordEncryption?: string;
  /** MySQL/MariaDB: the threshold of the slow-query counter, seconds. */
  longQueryTime?: number;
  /** MySQL/MariaDB: idle connections are closed by the server after this many seconds. */
  waitTimeout?: number;
}

/** The capacity formula, worked out, with each line of its arithmetic for the files' comments. */
export interface Capacity {
  replicas: number;
  surgeInstances: number;
  /** replicas + surge: the instances that hold a pool at once during a rollout. */
  peakInstances: number;
  buffer: number;
  /** usable − buffer: the connections the pools may take together. */
  budget: number;
  configured: { poolSize: number; maxOverflow: number };
  /** True when (replicas + surge) × (pool_size + max_overflow) ≤ usable − buffer as configured. */
  fits: boolean;
  /** The per-instance sizes to emit: the configured ones when they fit, else scaled down. */
  poolSize: number;
  maxOverflow: number;
  /** pool_size + max_overflow of the emitted sizes. */
  perInstance: number;
  /** True when not even one connection per instance fits: the files say so, loudly. */
  impossible: boolean;
  /** The arithmetic, one line each, as the emitted comments show it. */
  lines: string[];
}

/** The seeds' statement timeout (RUNBOOK-006 "Fix Root Cause": statement_timeout 30000). */
export const SEED_STATEMENT_TIMEOUT_MS = 30_000;

function intParam(values: ParameterValues, name: string, fallback: number): number {
  const value = values[name];
  return typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : fallback;
}

/**
 * Works the capacity formula out from the target's slots and the runbook parameters, with the one
 * formula of src/wizard/capacity.ts: (replicas + surge) × (pool_size + max_overflow) ≤ usable −
 * buffer. The numbers are the runbook's (--set or the seed's example): a file to start from.
 */
export function capacityOf(
  facts: EmitFacts,
  values: ParameterValues,
  given: readonly string[] = [],
): Capacity {
  const replicas = Math.max(1, intParam(values, 'replicas', 3));
  const poolSize = Math.max(1, intParam(values, 'pool_size', 20));
  const maxOverflow = Math.max(0, intParam(values, 'max_overflow', 10));
  const surgePct = Math.max(0, intParam(values, 'rollout_surge', 25));
  const from = (name: string): CapacitySource => (given.includes(name) ? 'set' : 'default');
  const { buffer: bufferIn, text: bufferText } = bufferOf(values, facts.usable, given);
  const buffer = bufferIn.value ?? 0;
  const check = checkCapacity({
    replicas: { value: replicas, from: from('replicas') },
    poolSize: { value: poolSize, from: from('pool_size') },
    maxOverflow: { value: maxOverflow, from: from('max_overflow') },
    surge: { percent: surgePct, from: from('rollout_surge') },
    usable: { value: facts.usable, from: 'server' },
    buffer: { value: buffer, from: bufferIn.from },
  });
  const surgeInstances = check.surge!;
  const peakInstances = replicas + surgeInstances;
  const budget = check.budget!;
  const fits = check.oversubscribed === false;
  const perMax = Math.floor(budget / peakInstances);
  const impossible = perMax < 1;

  const lines: string[] = [];
  if (facts.engine === 'postgres') {
    lines.push(
      `usable connections: max_connections ${facts.maxConnections} − superuser_reserved_connections ${facts.superuserReserved}` +
        `${facts.reserved ? ` − reserved_connections ${facts.reserved}` : ''} = ${facts.usable}`,
    );
  } else {
    lines.push(
      `usable connections: max_connections ${facts.maxConnections} (the extra SUPER/CONNECTION ADMIN connection is on top)`,
    );
  }
  lines.push(
    `budget for the pools: ${facts.usable} usable − ${buffer} buffer = ${budget} (${bufferText})`,
    `instances at peak: ${replicas} replicas + ceil(${replicas} × ${surgePct}% rollout_surge) = ${peakInstances}`,
    `configured: ${check.arithmetic}: ${fits ? 'fits' : 'OVERSUBSCRIBED'}`,
  );

  let emitSize = poolSize;
  let emitOverflow = maxOverflow;
  if (impossible) {
    emitSize = 1;
    emitOverflow = 0;
    lines.push(
      `per instance: floor(${budget} / ${peakInstances}) = ${perMax}: not one connection per instance fits; ` +
        'put PgBouncer (or ProxySQL) in front, run fewer instances, or raise max_connections',
    );
  } else if (!fits) {
    // Keep the configured split between base and overflow connections.
    emitSize = Math.max(1, Math.floor((perMax * poolSize) / (poolSize + maxOverflow)));
    emitOverflow = perMax - emitSize;
    lines.push(
      `per instance: floor(${budget} / ${peakInstances}) = ${perMax} → pool_size ${emitSize} + max_overflow ${emitOverflow}; ` +
        `${peakInstances} × ${perMax} = ${peakInstances * perMax} ≤ ${budget}`,
    );
  } else {
    lines.push(
      `per instance: ${poolSize + maxOverflow} ≤ floor(${budget} / ${peakInstances}) = ${perMax}: the configured sizes stay`,
    );
  }
  return {
    replicas,
    surgeInstances,
    peakInstances,
    buffer,
    budget,
    configured: { poolSize, maxOverflow },
    fits,
    poolSize: emitSize,
    maxOverflow: emitOverflow,
    perInstance: emitSize + emitOverflow,
    impossible,
    lines,
  };
}
