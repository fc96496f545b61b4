import type { DatabaseTarget, DatabaseTargetSpec } from './types.js';

/** Opens the database target with its engine's adapter; each driver loads only when used. */
export async function connectDatabase(spec: DatabaseTargetSpec): Promise<DatabaseTarget> {
  switch (spec.engine) {
    case 'postgres': {
      const { connectPostgres } = await import('./postgres.js');
      return connectPostgres(spec);
    }
    case 'mysql': {
      const { connectMysql } = await import('./mysql.js');
      return connectMysql(spec);
    }
  }
}
