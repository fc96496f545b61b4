/**
 * The numbers `poolctl prevent --emit` fills its files with, and the capacity formula of the seeds
 * (RUNBOOK-006 Prevention 1), from src/wizard/capacity.ts: (replicas + surge) × (pool_size +
 * max_overflow) ≤ usable connections − buffer, counting the extra instances a rolling update
 * starts, each with a full pool.
 */
import type { Engine, ParameterValues } from '../runbook/types.js';
import {
  bufferOf,
  checkCapacity,
  sourcesText,
  SOURCE_WORDS,
  type CapacityNumber,
  type CapacitySource,
  type Sourced,
} from '../wizard/capacity.js';
import type { StepOutcome } from '../wizard/model.js';
import { appCapacityInputs } from '../wizard/prevent.js';

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
  /** Where each number came from (--set, kubectl Deployment, Prometheus, the server, default). */
  sources: Record<CapacityNumber, CapacitySource>;
  /** `Numbers from: replicas 6 (kubectl Deployment), …`, and the defaults line when there are any. */
  sourceLines: string[];
  /**
   * The numbers that are still the runbook's example (the seed's 3 × (20 + 10), 25% surge), not
   * this setup's, each with the `--set` that gives the real one. Empty: every number is real.
   */
  defaults: { name: string; text: string; set: string }[];
  /** One line for stderr when `defaults` is not empty: what is a default and the --set to pass. */
  warning?: string;
}

/** The seeds' statement timeout (RUNBOOK-006 "Fix Root Cause": statement_timeout 30000). */
export const SEED_STATEMENT_TIMEOUT_MS = 30_000;

function intParam(values: ParameterValues, name: string, fallback: number): number {
  const value = values[name];
  return typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : fallback;
}

/**
 * Works the capacity formula out from the target's slots and the application's numbers, with the
 * one formula of src/wizard/capacity.ts: (replicas + surge) × (pool_size + max_overflow) ≤ usable −
 * buffer. The application's numbers resolve as prevent's audit resolves them (`appCapacityInputs`:
 * --set, then the Deployment kubectl read, then Prometheus' db_pool_connections_max per replica,
 * from `outcomes`); a number none of them has is the runbook's example default, and `defaults`
 * and `warning` say so: the file is a starting point, not this setup's sizing.
 */
export function capacityOf(
  facts: EmitFacts,
  values: ParameterValues,
  given: readonly string[] = [],
  outcomes: StepOutcome[] = [],
): Capacity {
  const app = appCapacityInputs(given, values, outcomes);
  const defaults: Capacity['defaults'] = [];
  const orDefault = (s: Sourced, name: string, fallback: number, min: number): Sourced => {
    if (s.value !== undefined) return s;
    const value = Math.max(min, intParam(values, name, fallback));
    defaults.push({ name, text: `${name} ${value}`, set: `--set ${name}=N` });
    return { value, from: 'default', ...(s.why !== undefined && { why: s.why }) };
  };
  const replicasIn = orDefault(app.replicas, 'replicas', 3, 1);
  let poolIn: Sourced;
  let overflowIn: Sourced;
  if (app.perPod?.value !== undefined) {
    // Prometheus knows each pod's pool_size + max_overflow only as their sum: split it in the
    // runbook default's proportion, and say that the split is a default.
    const d = Math.max(1, intParam(values, 'pool_size', 20));
    const o = Math.max(0, intParam(values, 'max_overflow', 10));
    const total = Math.max(1, Math.round(app.perPod.value));
    const size = Math.max(1, Math.round((total * d) / (d + o)));
    poolIn = { value: size, from: app.perPod.from };
    overflowIn = { value: total - size, from: app.perPod.from };
    defaults.push({
      name: 'pool_size/max_overflow',
      text: `the split of ${total} (${SOURCE_WORDS.prometheus}) into pool_size ${size} + max_overflow ${total - size}, in the runbook default's ${d}:${o}`,
      set: '--set pool_size=N --set max_overflow=N',
    });
  } else {
    poolIn = orDefault(app.poolSize, 'pool_size', 20, 1);
    overflowIn = orDefault(app.maxOverflow, 'max_overflow', 10, 0);
  }
  if (app.surge.from === 'default') {
    defaults.push({
      name: 'rollout_surge',
      text: `rollout_surge ${app.surge.percent}%`,
      set: '--set rollout_surge=PERCENT',
    });
  }
  const replicas = replicasIn.value!;
  const poolSize = poolIn.value!;
  const maxOverflow = overflowIn.value!;
  const surgePct = app.surge.percent;
  const { buffer: bufferIn, text: bufferText } = bufferOf(values, facts.usable, given);
  const buffer = bufferIn.value ?? 0;
  const check = checkCapacity({
    replicas: replicasIn,
    poolSize: poolIn,
    maxOverflow: overflowIn,
    surge: app.surge,
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
    surgePct !== undefined
      ? `instances at peak: ${replicas} replicas + ceil(${replicas} × ${surgePct}% ${app.surge.from === 'kubectl' ? "the Deployment's maxSurge" : 'rollout_surge'}) = ${peakInstances}`
      : `instances at peak: ${replicas} replicas + ${surgeInstances} (the Deployment's maxSurge) = ${peakInstances}`,
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
  const sourceLines = [`numbers from: ${sourcesText(check)}`];
  let warning: string | undefined;
  if (defaults.length > 0) {
    const whys = [
      ...new Set([replicasIn.why, poolIn.why, overflowIn.why].filter((w) => w !== undefined)),
    ];
    const sets = [...new Set(defaults.map((d) => d.set))].join(' ');
    const which = defaults.map((d) => d.text).join(', ');
    sourceLines.push(
      `RUNBOOK DEFAULTS, not this setup: ${which}${whys.length > 0 ? ` (${whys.join('; ')})` : ''}; ` +
        `for the real numbers pass ${sets}, or the cluster flags (--kube-context, --namespace, --set deployment=NAME) or --prometheus`,
    );
    warning = `sized from the runbook's example defaults, not this setup: ${which}; pass ${sets} for the real numbers`;
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
    sources: check.sources!,
    sourceLines,
    defaults,
    ...(warning !== undefined && { warning }),
  };
}
