import { engineOf } from '../engines.js';
import { UsageError } from '../errors.js';
import type { DatabaseTargetSpec } from '../targets/types.js';
import type { DrillEngine } from './types.js';

/** The drill module of the target's engine, like `connectDatabase`: drivers load only when used. */
export async function loadDrillEngine(spec: DatabaseTargetSpec): Promise<DrillEngine> {
  const engine = engineOf(spec.engine);
  if (!engine.drill) {
    throw new UsageError(`drill: poolctl has no drill for ${engine.products.join('/')} targets`);
  }
  return engine.drill(spec);
}
