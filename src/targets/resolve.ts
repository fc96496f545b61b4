import { UsageError } from '../errors.js';
import { ENGINE_LIST, engineForUrl, schemeList, urlFlag, type EngineUrlFlags } from '../engines.js';
import type { DatabaseTargetSpec } from './types.js';

/** The target flags (`--pg`, `--mysql`: one per engine, from src/engines.ts) and timeouts. */
export interface TargetFlags extends EngineUrlFlags {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/**
 * Finds the database target from flags, then the conventional environment: an engine's flag
 * (`--pg URL`, `--mysql URL`), `DATABASE_URL` (any engine's scheme), then the first engine whose
 * client variables are set (libpq's PGHOST/PGPORT/PGUSER/PGDATABASE, then the MySQL client's
 * MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_UNIX_PORT/MYSQL_PWD). Passwords not in the URL come from
 * PGPASSWORD and ~/.pgpass (read by the driver, as libpq does), or MYSQL_PWD. Each engine's
 * spec module (src/engines.ts) reads its own URLs and variables.
 */
export async function resolveDatabaseTarget(
  flags: TargetFlags,
  env: NodeJS.ProcessEnv,
): Promise<DatabaseTargetSpec> {
  const timeouts = {
    connectTimeoutMs: flags.connectTimeoutMs,
    statementTimeoutMs: flags.statementTimeoutMs,
  };
  const flagged = ENGINE_LIST.filter((engine) => urlFlag(flags, engine));
  if (flagged.length > 1) {
    const names = flagged.map((engine) => `--${engine.flag}`).join(' and ');
    throw new UsageError(`${names}: give one database target`);
  }
  const [engine] = flagged;
  if (engine) {
    const url = urlFlag(flags, engine)!;
    const from = `--${engine.flag}`;
    if (engineForUrl(url) !== engine) {
      throw new UsageError(`${from}: expected a ${schemeList([engine])} URL`);
    }
    return (await engine.spec()).fromUrl(url, from, env, timeouts);
  }
  const databaseUrl = env.DATABASE_URL;
  if (databaseUrl) {
    const named = engineForUrl(databaseUrl);
    if (!named) throw new UsageError(`DATABASE_URL: expected a ${schemeList()} URL`);
    return (await named.spec()).fromUrl(databaseUrl, 'DATABASE_URL', env, timeouts);
  }
  const fromEnv = ENGINE_LIST.find((e) => e.env.some((name) => env[name]));
  if (fromEnv) return (await fromEnv.spec()).fromEnv(env, timeouts);
  throw new UsageError(
    `no database target: pass ${ENGINE_LIST.map((e) => `--${e.flag} ${e.exampleUrl}`).join(' or ')}, ` +
      `or set DATABASE_URL, ${ENGINE_LIST.map((e) => e.env[0]).join(' or ')}`,
  );
}

/** `postgres://app@db:5432/appdb`, `mysql://root@db:3306/`: never a password. */
export function targetLabel(spec: DatabaseTargetSpec): string {
  // A unix socket directory has no place in a URL's host: name it the way libpq's URLs do.
  if (spec.host.startsWith('/')) {
    return `${spec.engine}://${encodeURIComponent(spec.user)}@${encodeURIComponent(spec.host)}:${spec.port}/${spec.database}`;
  }
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.engine}://${encodeURIComponent(spec.user)}@${host}:${spec.port}/${spec.database}`;
}
