import { sanitizeInline } from '../io/sanitize.js';
import { parametersOf } from '../runbook/render.js';
import type { KubernetesChangeStep } from '../runbook/types.js';
import {
  capacityVerdict,
  checkCapacity,
  deploymentPool,
  type Capacity,
  type Sourced,
} from '../wizard/capacity.js';
import type { MitigationContext } from '../wizard/mitigation.js';
import type { Metrics } from '../wizard/model.js';

/** The parameters whose change moves what the application may ask of the database. */
const CAPACITY_PARAMETERS = ['replicas', 'pool_size', 'max_overflow'] as const;

/** A change that sets the replica count or the pool size: the capacity guard applies to it. */
export function movesCapacity(step: KubernetesChangeStep): boolean {
  const used = parametersOf(step);
  return CAPACITY_PARAMETERS.some((name) => used.includes(name));
}

/**
 * The capacity after the change: each factor from --set when given (the number the change sets),
 * else from the Deployment as it runs now (`get deployment/NAME -o json`), against the usable
 * connections the server reported before the change.
 */
export async function capacityAfter(
  step: KubernetesChangeStep,
  ctx: MitigationContext,
  before: Metrics | undefined,
): Promise<Capacity> {
  const given = (name: string): Sourced | undefined => {
    const value = ctx.values[name];
    return ctx.given.includes(name) && typeof value === 'number'
      ? { value, from: 'set' }
      : undefined;
  };
  const set = {
    replicas: given('replicas'),
    poolSize: given('pool_size'),
    maxOverflow: given('max_overflow'),
  };
  let fromDeployment: Record<keyof typeof set, Sourced> | undefined;
  if (!set.replicas || !set.poolSize || !set.maxOverflow) {
    fromDeployment = await readDeployment(ctx);
  }
  const usable = before?.usable_connections;
  return checkCapacity({
    replicas: set.replicas ?? fromDeployment!.replicas,
    poolSize: set.poolSize ?? fromDeployment!.poolSize,
    maxOverflow: set.maxOverflow ?? fromDeployment!.maxOverflow,
    usable:
      usable !== undefined
        ? { value: usable, from: 'deployment' }
        : { from: 'unknown', why: 'the database could not be measured' },
  });
}

async function readDeployment(ctx: MitigationContext) {
  const name = String(ctx.values.deployment ?? 'api');
  const unknown = (why: string): Sourced => ({ from: 'unknown', why });
  try {
    const kubernetes = await ctx.targets.kubernetes();
    const { stdout } = await kubernetes.run(['get', `deployment/${name}`, '-o', 'json']);
    const pool = deploymentPool(JSON.parse(stdout));
    const pick = (value: number | undefined, why: string | undefined): Sourced =>
      value !== undefined ? { value, from: 'deployment' } : unknown(why ?? 'unknown');
    return {
      replicas: pick(pool.replicas, pool.why.replicas),
      poolSize: pick(pool.poolSize, pool.why.poolSize),
      maxOverflow: pick(pool.maxOverflow, pool.why.maxOverflow),
    };
  } catch (err) {
    const why = `deployment/${name} could not be read (${sanitizeInline((err as Error).message)})`;
    return { replicas: unknown(why), poolSize: unknown(why), maxOverflow: unknown(why) };
  }
}

/** The preview's capacity line: the arithmetic and what it means. */
export function capacityLine(capacity: Capacity): string {
  return `capacity: ${capacityVerdict(capacity)}`;
}

/** Why the change needs the second confirmation, or undefined when it fits. */
export function capacityCaution(capacity: Capacity): string | undefined {
  if (capacity.oversubscribed === false) return undefined;
  if (capacity.oversubscribed === true)
    return `${capacity.arithmetic}: oversubscribes the database`;
  return `capacity unchecked (${capacity.unknown.join('; ')})`;
}
