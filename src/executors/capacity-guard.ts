import { sanitizeInline } from '../io/sanitize.js';
import { parametersOf } from '../runbook/render.js';
import type { KubernetesChangeStep, PromqlStep } from '../runbook/types.js';
import { deploymentOf, type DeploymentFacts } from '../targets/kubernetes-objects.js';
import {
  bufferOf,
  capacityVerdict,
  checkCapacity,
  type Capacity,
  type Sourced,
  type SurgeInput,
} from '../wizard/capacity.js';
import { isServerSide } from '../wizard/exporter.js';
import type { MitigationContext } from '../wizard/mitigation.js';
import type { Metrics } from '../wizard/model.js';
import { promqlExecutor } from './promql.js';

/** The parameters whose change moves what the application may ask of the database. */
const CAPACITY_PARAMETERS = ['replicas', 'pool_size', 'max_overflow'] as const;

/** A change that sets the replica count or the pool size: the capacity guard applies to it. */
export function movesCapacity(step: KubernetesChangeStep): boolean {
  const used = parametersOf(step);
  return CAPACITY_PARAMETERS.some((name) => used.includes(name));
}

/** The capacity after the change, and what the Deployment asks for now (the demand it changes). */
export interface GuardCapacity extends Capacity {
  /** The demand of the Deployment as it runs now, with the same surge, usable and buffer. */
  current?: { demand?: number; arithmetic: string };
  /** true: the change does not raise the demand (a scale-down, a smaller pool): never blocked. */
  lowers_demand?: boolean;
}

/**
 * The capacity after the change: each factor from --set when given (the number the change sets),
 * else from the Deployment as it runs now (`get deployment/NAME -o json`, read with the one
 * parser `deploymentOf`), against the usable connections the server reported before the change
 * — or, when the server refused poolctl, the usable connections its exporter reports through
 * Prometheus. The Deployment is read whenever it can be, so that the demand now can be set beside
 * the demand after: a change that does not raise it is not blocked.
 */
export async function capacityAfter(
  step: KubernetesChangeStep,
  ctx: MitigationContext,
  before: Metrics | undefined,
): Promise<GuardCapacity> {
  const given = (name: string): Sourced | undefined => {
    const value = ctx.values[name];
    return ctx.given.includes(name) && typeof value === 'number'
      ? { value, from: 'set' }
      : undefined;
  };
  const now = await readDeployment(ctx);
  const usable = await usableConnections(ctx, before);
  const { buffer } = bufferOf(ctx.values, usable.value, ctx.given);
  const surge: SurgeInput = ctx.given.includes('rollout_surge')
    ? { percent: Number(ctx.values.rollout_surge), from: 'set' }
    : (now.surge ?? { percent: Number(ctx.values.rollout_surge ?? 25), from: 'default' });
  // The change sets only its own factors (scale-app the replicas, raise-pool-size the pool):
  // those come from --set; every other factor is the Deployment's as it runs, a --set standing
  // in only where the Deployment cannot say (a pool from valueFrom, kubectl unreadable).
  const changed = new Set<string>(parametersOf(step));
  const factors = { replicas: 'replicas', poolSize: 'pool_size', maxOverflow: 'max_overflow' };
  const nowOf = (key: keyof typeof factors): Sourced => {
    const name = factors[key];
    return now[key].value !== undefined || changed.has(name) ? now[key] : (given(name) ?? now[key]);
  };
  const afterOf = (key: keyof typeof factors): Sourced =>
    changed.has(factors[key]) ? (given(factors[key]) ?? nowOf(key)) : nowOf(key);
  const after = checkCapacity({
    replicas: afterOf('replicas'),
    poolSize: afterOf('poolSize'),
    maxOverflow: afterOf('maxOverflow'),
    surge,
    usable,
    buffer,
  });
  const current = checkCapacity({
    replicas: nowOf('replicas'),
    poolSize: nowOf('poolSize'),
    maxOverflow: nowOf('maxOverflow'),
    surge,
    usable,
    buffer,
  });
  // Factor by factor — the replicas, and each replica's pool (pool_size + max_overflow) — since
  // what the change leaves alone is the same before and after: a change none of whose own
  // factors rises does not raise the demand, whatever else is unknown.
  const sum = (a: Sourced, b: Sourced) =>
    a.value === undefined || b.value === undefined ? undefined : a.value + b.value;
  const moved: [boolean, number | undefined, number | undefined][] = [
    [changed.has('replicas'), nowOf('replicas').value, afterOf('replicas').value],
    [
      changed.has('pool_size') || changed.has('max_overflow'),
      sum(nowOf('poolSize'), nowOf('maxOverflow')),
      sum(afterOf('poolSize'), afterOf('maxOverflow')),
    ],
  ];
  const rises = moved
    .filter(([moves]) => moves)
    .map(([, was, will]) => (was === undefined || will === undefined ? undefined : will > was));
  const lowers = rises.some((r) => r === true)
    ? false
    : rises.length > 0 && rises.every((r) => r === false)
      ? true
      : undefined;
  return {
    ...after,
    current: {
      ...(current.demand !== undefined && { demand: current.demand }),
      arithmetic: current.arithmetic,
    },
    ...(lowers !== undefined && { lowers_demand: lowers }),
  };
}

interface DeploymentNumbers {
  replicas: Sourced;
  poolSize: Sourced;
  maxOverflow: Sourced;
  surge?: SurgeInput;
}

async function readDeployment(ctx: MitigationContext): Promise<DeploymentNumbers> {
  const name = String(ctx.values.deployment ?? 'api');
  const unknown = (why: string): Sourced => ({ from: 'unknown', why });
  let facts: DeploymentFacts;
  try {
    const kubernetes = await ctx.targets.kubernetes();
    const { stdout } = await kubernetes.run(['get', `deployment/${name}`, '-o', 'json']);
    facts = deploymentOf(stdout);
  } catch (err) {
    const why = `deployment/${name} could not be read (${sanitizeInline((err as Error).message)})`;
    return { replicas: unknown(why), poolSize: unknown(why), maxOverflow: unknown(why) };
  }
  const pick = (value: number | null, why: string | undefined): Sourced =>
    value !== null ? { value, from: 'kubectl' } : unknown(why ?? 'unknown');
  const surge = facts.maxSurge;
  return {
    replicas: { value: facts.replicas, from: 'kubectl' },
    poolSize: pick(facts.poolSize, facts.why.poolSize),
    maxOverflow: pick(facts.maxOverflow, facts.why.maxOverflow),
    ...(surge !== null && {
      surge:
        typeof surge === 'number'
          ? { count: surge, from: 'kubectl' }
          : { percent: Number(surge.replace('%', '')), from: 'kubectl' },
    }),
  };
}

/**
 * The usable connections: the server's own reading before the change; when the server refused
 * poolctl (full), its exporter's through Prometheus (the diagnose step with `side: server` and
 * the `exporter_usable_connections` headline). Unknown otherwise: never guessed.
 */
async function usableConnections(
  ctx: MitigationContext,
  before: Metrics | undefined,
): Promise<Sourced> {
  if (before?.usable_connections !== undefined) {
    return { value: before.usable_connections, from: 'server' };
  }
  if (!ctx.targets.has('prometheus')) {
    return { from: 'unknown', why: 'the database could not be measured (and no --prometheus)' };
  }
  const step = ctx.runbook.diagnose.find(
    (s): s is PromqlStep =>
      isServerSide(s) &&
      s.kind === 'promql' &&
      s.headline?.exporter_usable_connections !== undefined,
  );
  if (!step) return { from: 'unknown', why: 'the database could not be measured' };
  const column = step.headline!.exporter_usable_connections!;
  try {
    const rows = await promqlExecutor.read(step, ctx);
    const values = rows.map((r) => r[column]).filter((v): v is number => typeof v === 'number');
    if (values.length === 0) {
      return {
        from: 'unknown',
        why: `the database could not be measured, and its exporter reports no ${column} through Prometheus`,
      };
    }
    // Several exporters matched (several servers): the smallest is the one that fills first.
    return { value: Math.min(...values), from: 'exporter' };
  } catch (err) {
    return {
      from: 'unknown',
      why: `the database could not be measured, and its exporter could not be read (${sanitizeInline((err as Error).message)})`,
    };
  }
}

/** The preview's capacity line: the arithmetic, what it means, and the demand it replaces. */
export function capacityLine(capacity: GuardCapacity): string {
  const lowers =
    capacity.lowers_demand === true && capacity.oversubscribed !== false
      ? `; does not raise the demand (now ${capacity.current?.demand}): not blocked`
      : '';
  const usable =
    capacity.sources?.usable === 'exporter'
      ? ' (usable connections from the exporter: the server refused poolctl)'
      : '';
  return `capacity: ${capacityVerdict(capacity)}${usable}${lowers}`;
}

/**
 * Why the change needs the second confirmation, or undefined when it fits or does not raise the
 * demand (a scale-down is how an oversubscription is fixed: it is never blocked). A number that
 * could not be read and a demand that rises is a caution: never guessed.
 */
export function capacityCaution(capacity: GuardCapacity): string | undefined {
  if (capacity.lowers_demand === true) return undefined;
  if (capacity.oversubscribed === false) return undefined;
  if (capacity.oversubscribed === true)
    return `${capacity.arithmetic}: oversubscribes the database`;
  return `capacity unchecked (${capacity.unknown.join('; ')})`;
}
