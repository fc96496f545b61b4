/**
 * RUNBOOK-006 Prevention 1, the one capacity formula of poolctl (the capacity guard before a
 * scale or a pool change, prevent's audit, prevent --emit's sizing all use it):
 *
 *     (replicas + surge) × (pool_size + max_overflow) ≤ usable − buffer
 *
 * - The seed: "(instances * pool_size) + (instances * max_overflow)", "Ensure PostgreSQL
 *   max_connections > 90 + buffer". The buffer is a number of connections added to the pools'
 *   total (the seed's "90 + buffer"), kept free for migrations, cron, consoles, exporters and
 *   poolctl itself: `capacity_buffer`, a count.
 * - usable = max_connections − the reserved slots (DESIGN: what runs out), stricter than the
 *   seed's max_connections: with PostgreSQL's 3 reserved slots, demand + buffer ≤ usable means
 *   max_connections > demand + buffer, the seed's strict inequality. MySQL/MariaDB reserve no
 *   slot for ordinary accounts (usable = max_connections), so there ≤ lets demand + buffer equal
 *   max_connections: one connection looser than the seed's ">", which the buffer (10 by
 *   default) more than covers; kept so that one formula reads the same on both engines.
 * - instances = replicas + surge: a rolling update (any `set env`, a new build) runs `maxSurge`
 *   extra pods, each with a full pool, beside the old ones (Kubernetes' default maxSurge is 25%,
 *   rounded up; the Recreate strategy has none).
 * - capacity_headroom (a percent, optional) is the same buffer said as a share of the usable
 *   connections: when set, buffer = max(capacity_buffer, ceil(usable × capacity_headroom / 100)).
 *   Both are floors on the connections left free, so the larger wins.
 *
 * Pure: the numbers and where each came from are the caller's (--set, kubectl's Deployment,
 * Prometheus, the server, its exporter); nothing here reads a system.
 */
import type { ParameterValues } from '../runbook/types.js';

/** Where a number came from. */
export type CapacitySource =
  'set' | 'kubectl' | 'prometheus' | 'server' | 'exporter' | 'default' | 'unknown';

/** How a source is named in a message: `replicas 6 (kubectl deployment/api)`. */
export const SOURCE_WORDS: Record<CapacitySource, string> = {
  set: '--set',
  kubectl: 'kubectl Deployment',
  prometheus: 'Prometheus db_pool_connections_max per replica',
  server: 'the server',
  exporter: "the server's exporter through Prometheus",
  default: 'runbook default',
  unknown: 'unknown',
};

export interface Sourced {
  value?: number;
  from: CapacitySource;
  /** Why the value is unknown (the deployment could not be read, its env has no such variable). */
  why?: string;
}

/** The rollout's extra pods: a count, or a percent of the replicas (rounded up, as Kubernetes). */
export interface SurgeInput {
  count?: number;
  percent?: number;
  from: CapacitySource;
  why?: string;
}

export interface CapacityInputs {
  replicas: Sourced;
  poolSize: Sourced;
  maxOverflow: Sourced;
  /**
   * pool_size + max_overflow when only their sum is known (Prometheus' db_pool_connections_max);
   * used when poolSize or maxOverflow is unknown.
   */
  perPod?: Sourced;
  surge: SurgeInput;
  /** The database's usable connections (max_connections − reserved); absent when unmeasured. */
  usable: Sourced;
  /** Connections kept free beyond the pools (`bufferOf`). */
  buffer: Sourced;
}

export type CapacityNumber =
  'replicas' | 'pool_size' | 'max_overflow' | 'per_pod' | 'surge' | 'usable' | 'buffer';

export interface Capacity {
  replicas?: number;
  /** Extra pods during a rolling update. */
  surge?: number;
  pool_size?: number;
  max_overflow?: number;
  /** pool_size + max_overflow: the connections one pod may open. */
  per_pod?: number;
  /** (replicas + surge) × per_pod, when every factor is known. */
  demand?: number;
  usable?: number;
  buffer?: number;
  /** usable − buffer: what the pools may take together. */
  budget?: number;
  /** true: demand > usable − buffer; false: fits; undefined: a number is unknown, nothing proven. */
  oversubscribed?: boolean;
  /** true: demand > usable itself (past the server, not only into the buffer). */
  over_usable?: boolean;
  /** `(6 + 2) × (20 + 10) = 240 > 37 usable − 10 buffer`, unknown numbers as `?`. */
  arithmetic: string;
  /** Where each number came from (absent in transcripts written before it was recorded). */
  sources?: Record<CapacityNumber, CapacitySource>;
  /** How the surge and the buffer were worked out: `surge ceil(6 × 25%) = 2 (runbook default rollout_surge)`. */
  derivation?: string[];
  /** What is unknown and how to give it (`pool_size: … (--set pool_size=N)`). */
  unknown: string[];
}

/** Kubernetes' rounding of a percent maxSurge: up. */
export function surgeCount(replicas: number, percent: number): number {
  return Math.ceil((replicas * percent) / 100);
}

/**
 * The buffer in connections, from `capacity_buffer` (a count; its default 10 when not given) and
 * `capacity_headroom` (a percent of usable, only when given): the larger of the two.
 */
export function bufferOf(
  values: ParameterValues,
  usable: number | undefined,
  given: readonly string[] = [],
): { buffer: Sourced; text: string } {
  const count = Math.max(0, Math.round(Number(values.capacity_buffer ?? 10)) || 0);
  const countFrom: CapacitySource = given.includes('capacity_buffer') ? 'set' : 'default';
  // capacity_headroom has no default: a value is one somebody gave.
  const pct = values.capacity_headroom !== undefined ? Number(values.capacity_headroom) : NaN;
  if (Number.isFinite(pct) && pct > 0) {
    if (usable === undefined) {
      return {
        buffer: { from: 'unknown', why: `capacity_headroom ${pct}% of unknown usable connections` },
        text: `buffer: capacity_headroom ${pct}% of ? usable`,
      };
    }
    const derived = Math.ceil((usable * pct) / 100);
    if (derived >= count) {
      return {
        buffer: { value: derived, from: 'set' },
        text: `buffer: capacity_headroom ${pct}% of ${usable} usable = ${derived} (≥ capacity_buffer ${count})`,
      };
    }
    return {
      buffer: { value: count, from: countFrom },
      text: `buffer: capacity_buffer ${count} (> capacity_headroom ${pct}% of ${usable} usable = ${derived})`,
    };
  }
  return { buffer: { value: count, from: countFrom }, text: `buffer: capacity_buffer ${count}` };
}

/** The arithmetic of RUNBOOK-006 Prevention 1, and whether it oversubscribes the database. */
export function checkCapacity(inputs: CapacityInputs): Capacity {
  const { replicas, poolSize, maxOverflow, surge, usable, buffer } = inputs;
  const unknown: string[] = [];
  const derivation: string[] = [];
  const hint = (name: string, s: { why?: string }) =>
    unknown.push(`${name}: ${s.why ?? 'unknown'} (--set ${name}=N)`);
  if (replicas.value === undefined) hint('replicas', replicas);
  const splitKnown = poolSize.value !== undefined && maxOverflow.value !== undefined;
  const perPodOnly = !splitKnown && inputs.perPod?.value !== undefined ? inputs.perPod : undefined;
  if (!perPodOnly) {
    if (poolSize.value === undefined) hint('pool_size', poolSize);
    if (maxOverflow.value === undefined) hint('max_overflow', maxOverflow);
  }
  const perPod = splitKnown ? poolSize.value! + maxOverflow.value! : perPodOnly?.value;

  let surgeN: number | undefined;
  if (surge.count !== undefined) {
    surgeN = surge.count;
    derivation.push(`surge: ${surgeN} pods (${SOURCE_WORDS[surge.from]} maxSurge)`);
  } else if (surge.percent !== undefined && replicas.value !== undefined) {
    surgeN = surgeCount(replicas.value, surge.percent);
    const name = surge.from === 'kubectl' ? "the Deployment's maxSurge" : 'rollout_surge';
    derivation.push(
      `surge: ceil(${replicas.value} × ${surge.percent}% ${name}) = ${surgeN} pods (${SOURCE_WORDS[surge.from]})`,
    );
  } else if (surge.percent === undefined) {
    unknown.push(`surge: ${surge.why ?? 'unknown'} (--set rollout_surge=PERCENT)`);
  }
  if (usable.value === undefined) {
    unknown.push(`usable connections: ${usable.why ?? 'the database was not measured'}`);
  }
  if (buffer.value === undefined) unknown.push(`buffer: ${buffer.why ?? 'unknown'}`);

  const show = (n: number | undefined) => (n === undefined ? '?' : String(n));
  const demand =
    replicas.value !== undefined && surgeN !== undefined && perPod !== undefined
      ? (replicas.value + surgeN) * perPod
      : undefined;
  const budget =
    usable.value !== undefined && buffer.value !== undefined
      ? usable.value - buffer.value
      : undefined;
  const oversubscribed = demand !== undefined && budget !== undefined ? demand > budget : undefined;
  const overUsable =
    demand !== undefined && usable.value !== undefined ? demand > usable.value : undefined;
  const relation = oversubscribed === undefined ? 'vs' : oversubscribed ? '>' : '≤';
  const pod = perPodOnly ? show(perPod) : `(${show(poolSize.value)} + ${show(maxOverflow.value)})`;
  const arithmetic =
    `(${show(replicas.value)} + ${show(surgeN)}) × ${pod} = ${show(demand)} ${relation} ` +
    `${show(usable.value)} usable − ${show(buffer.value)} buffer`;
  return {
    ...(replicas.value !== undefined && { replicas: replicas.value }),
    ...(surgeN !== undefined && { surge: surgeN }),
    ...(poolSize.value !== undefined && { pool_size: poolSize.value }),
    ...(maxOverflow.value !== undefined && { max_overflow: maxOverflow.value }),
    ...(perPod !== undefined && { per_pod: perPod }),
    ...(demand !== undefined && { demand }),
    ...(usable.value !== undefined && { usable: usable.value }),
    ...(buffer.value !== undefined && { buffer: buffer.value }),
    ...(budget !== undefined && { budget }),
    ...(oversubscribed !== undefined && { oversubscribed }),
    ...(overUsable !== undefined && { over_usable: overUsable }),
    arithmetic,
    sources: {
      replicas: replicas.from,
      pool_size: perPodOnly ? perPodOnly.from : poolSize.from,
      max_overflow: perPodOnly ? perPodOnly.from : maxOverflow.from,
      per_pod: perPodOnly ? perPodOnly.from : splitKnown ? poolSize.from : 'unknown',
      surge: surge.from,
      usable: usable.from,
      buffer: buffer.from,
    },
    derivation,
    unknown,
  };
}

/** `replicas 6 (kubectl Deployment), pool_size 20 (--set), …, usable 37 (the server)`. */
export function sourcesText(c: Capacity): string {
  const part = (name: CapacityNumber, value: number | undefined) =>
    value === undefined
      ? undefined
      : `${name} ${value} (${SOURCE_WORDS[c.sources?.[name] ?? 'unknown']})`;
  const perPodOnly = c.pool_size === undefined || c.max_overflow === undefined;
  return [
    part('replicas', c.replicas),
    part('surge', c.surge),
    ...(perPodOnly
      ? [part('per_pod', c.per_pod)]
      : [part('pool_size', c.pool_size), part('max_overflow', c.max_overflow)]),
    part('usable', c.usable),
    part('buffer', c.buffer),
  ]
    .filter((p): p is string => p !== undefined)
    .join(', ');
}

/**
 * The arithmetic and what it means, for a preview and a postmortem: `(6 + 2) × (20 + 10) = 240 >
 * 37 usable − 10 buffer: oversubscribes the database by 203 connections past its 37 usable`.
 */
export function capacityVerdict(capacity: Capacity): string {
  const { arithmetic, demand, usable, buffer } = capacity;
  if (capacity.over_usable === true) {
    return `${arithmetic}: oversubscribes the database by ${demand! - usable!} connections past its ${usable} usable (RUNBOOK-006 Prevention 1)`;
  }
  if (capacity.oversubscribed === true) {
    return `${arithmetic}: leaves ${usable! - demand!} connections free, less than the ${buffer} buffer (RUNBOOK-006 Prevention 1)`;
  }
  if (capacity.oversubscribed === false) return `${arithmetic}: fits`;
  return `${arithmetic}: cannot check (${capacity.unknown.join('; ')})`;
}
