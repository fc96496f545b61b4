import { engineOf } from '../engines.js';
import type { DatabaseTarget, DatabaseTargetSpec } from './types.js';

/** Opens the database target with its engine's adapter; each driver loads only when used. */
export async function connectDatabase(spec: DatabaseTargetSpec): Promise<DatabaseTarget> {
  return engineOf(spec.engine).connect(spec);
}
