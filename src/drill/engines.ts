import type { DatabaseTargetSpec } from '../targets/types.js';
import type { DrillEngine } from './types.js';

/** The drill module of the target's engine, like `connectDatabase`: drivers load only when used. */
export async function loadDrillEngine(spec: DatabaseTargetSpec): Promise<DrillEngine> {
  switch (spec.engine) {
    case 'postgres': {
      const { postgresDrill } = await import('./postgres.js');
      return postgresDrill(spec);
    }
    case 'mysql': {
      const { mysqlDrill } = await import('./mysql.js');
      return mysqlDrill(spec);
    }
  }
}
