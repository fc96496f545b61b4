/**
 * RUNBOOK-006 Prevention 1: every replica may open `pool_size + max_overflow` connections, so the
 * application can ask the database for `replicas × (pool_size + max_overflow)` of them. When that is
 * more than the slots an ordinary account can use (max_connections − reserved), a busy hour fills
 * the server while every pool is within its limits. Pure: the numbers come from the caller (--set,
 * the deployment, the server's utilization step); nothing here reads a system.
 */

/** Where a number came from: `--set`, the Deployment (its spec or environment), or nowhere. */
export type CapacitySource = 'set' | 'deployment' | 'unknown';

export interface Sourced {
  value?: number;
  from: CapacitySource;
  /** Why the value is unknown (the deployment could not be read, its env has no such variable). */
  why?: string;
}

export interface CapacityInputs {
  replicas: Sourced;
  poolSize: Sourced;
  maxOverflow: Sourced;
  /** The database's usable connections (max_connections − reserved); absent when unmeasured. */
  usable: Sourced;
}

export interface Capacity {
  replicas?: number;
  pool_size?: number;
  max_overflow?: number;
  /** replicas × (pool_size + max_overflow), when every factor is known. */
  demand?: number;
  usable?: number;
  /** true: demand > usable; false: within; undefined: a number is unknown, nothing is proven. */
  oversubscribed?: boolean;
  /** `6 × (20 + 10) = 180 > 37 usable`, unknown factors as `?`. */
  arithmetic: string;
  /** What is unknown and how to give it (`pool_size: not in the deployment's env; --set pool_size=N`). */
  unknown: string[];
}

/** The arithmetic of RUNBOOK-006 Prevention 1, and whether it oversubscribes the database. */
export function checkCapacity(inputs: CapacityInputs): Capacity {
  const { replicas, poolSize, maxOverflow, usable } = inputs;
  const unknown: string[] = [];
  const named: [string, Sourced][] = [
    ['replicas', replicas],
    ['pool_size', poolSize],
    ['max_overflow', maxOverflow],
  ];
  for (const [name, s] of named) {
    if (s.value === undefined) unknown.push(`${name}: ${s.why ?? 'unknown'} (--set ${name}=N)`);
  }
  if (usable.value === undefined) {
    unknown.push(`usable connections: ${usable.why ?? 'the database was not measured'}`);
  }
  const show = (n: number | undefined) => (n === undefined ? '?' : String(n));
  const factors = [replicas.value, poolSize.value, maxOverflow.value];
  const demand = factors.every((n) => n !== undefined)
    ? replicas.value! * (poolSize.value! + maxOverflow.value!)
    : undefined;
  const oversubscribed =
    demand !== undefined && usable.value !== undefined ? demand > usable.value : undefined;
  const relation = oversubscribed === undefined ? 'vs' : oversubscribed ? '>' : '≤';
  const arithmetic =
    `${show(replicas.value)} × (${show(poolSize.value)} + ${show(maxOverflow.value)}) = ` +
    `${show(demand)} ${relation} ${show(usable.value)} usable`;
  return {
    ...(replicas.value !== undefined && { replicas: replicas.value }),
    ...(poolSize.value !== undefined && { pool_size: poolSize.value }),
    ...(maxOverflow.value !== undefined && { max_overflow: maxOverflow.value }),
    ...(demand !== undefined && { demand }),
    ...(usable.value !== undefined && { usable: usable.value }),
    ...(oversubscribed !== undefined && { oversubscribed }),
    arithmetic,
    unknown,
  };
}

/**
 * The arithmetic and what it means, for a preview and a postmortem: `6 × (20 + 10) = 180 > 37
 * usable: oversubscribes the database by 143 connections`.
 */
export function capacityVerdict(capacity: Capacity): string {
  if (capacity.oversubscribed === true) {
    const over = capacity.demand! - capacity.usable!;
    return `${capacity.arithmetic}: oversubscribes the database by ${over} connections (RUNBOOK-006 Prevention 1)`;
  }
  if (capacity.oversubscribed === false) return `${capacity.arithmetic}: fits`;
  return `${capacity.arithmetic}: cannot check (${capacity.unknown.join('; ')})`;
}

/** The pool settings a Deployment declares: its replica count and its containers' environment. */
export interface DeploymentPool {
  replicas?: number;
  poolSize?: number;
  maxOverflow?: number;
  /** Why a setting is missing, per setting name. */
  why: Partial<Record<'replicas' | 'poolSize' | 'maxOverflow', string>>;
}

export const POOL_SIZE_ENV = 'DATABASE_POOL_SIZE';
export const MAX_OVERFLOW_ENV = 'DATABASE_POOL_MAX_OVERFLOW';

/**
 * Reads `kubectl get deployment/NAME -o json`: `spec.replicas` (Kubernetes' default is 1 when it
 * is absent) and the first container's literal `DATABASE_POOL_SIZE` / `DATABASE_POOL_MAX_OVERFLOW`.
 * A variable set from a ConfigMap or Secret (`valueFrom`) is unknown here, and said so.
 */
export function deploymentPool(json: unknown): DeploymentPool {
  const out: DeploymentPool = { why: {} };
  const doc = asObject(json);
  if (doc?.kind !== 'Deployment') {
    const kind = typeof doc?.kind === 'string' ? doc.kind : 'no Deployment';
    const why = `kubectl returned ${kind}, not a Deployment`;
    return { why: { replicas: why, poolSize: why, maxOverflow: why } };
  }
  const spec = asObject(doc.spec);
  const replicas = spec?.replicas;
  if (replicas === undefined) out.replicas = 1;
  else if (typeof replicas === 'number' && Number.isInteger(replicas)) out.replicas = replicas;
  else out.why.replicas = 'spec.replicas is not a number';
  const containers = asArray(asObject(asObject(spec?.template)?.spec)?.containers);
  const env = containers.flatMap((c) => asArray(asObject(c)?.env).map(asObject));
  const read = (name: string): { value?: number; why?: string } => {
    const entry = env.find((e) => e?.name === name);
    if (!entry) return { why: `${name} is not in the deployment's environment` };
    if (entry.value === undefined)
      return { why: `${name} comes from valueFrom, not readable here` };
    const n = Number(entry.value);
    if (typeof entry.value !== 'string' || !/^\d+$/.test(entry.value.trim()))
      return { why: `${name} is ${JSON.stringify(entry.value)}, not a whole number` };
    return { value: n };
  };
  const size = read(POOL_SIZE_ENV);
  const overflow = read(MAX_OVERFLOW_ENV);
  if (size.value !== undefined) out.poolSize = size.value;
  else out.why.poolSize = size.why;
  if (overflow.value !== undefined) out.maxOverflow = overflow.value;
  else out.why.maxOverflow = overflow.why;
  return out;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
