import { userInfo } from 'node:os';
import { UsageError } from '../errors.js';
import type { DatabaseTargetSpec } from './types.js';

export interface TargetFlags {
  pg?: string;
  mysql?: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

const POSTGRES_SCHEMES = ['postgres:', 'postgresql:'];
const MYSQL_SCHEMES = ['mysql:', 'mariadb:'];

/**
 * Finds the database target from flags, then the conventional environment: `--pg URL` or
 * `--mysql URL`, `DATABASE_URL` (either scheme), libpq's PGHOST/PGPORT/PGUSER/PGDATABASE, then the
 * MySQL client's MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_PWD (user: USER). Passwords not in the URL come
 * from PGPASSWORD and ~/.pgpass (read by the driver, as libpq does), or MYSQL_PWD.
 */
export async function resolveDatabaseTarget(
  flags: TargetFlags,
  env: NodeJS.ProcessEnv,
): Promise<DatabaseTargetSpec> {
  const timeouts = {
    connectTimeoutMs: flags.connectTimeoutMs,
    statementTimeoutMs: flags.statementTimeoutMs,
  };
  if (flags.pg && flags.mysql) throw new UsageError('--pg and --mysql: give one database target');
  if (flags.pg) return fromPostgresUrl(flags.pg, '--pg', env, timeouts);
  if (flags.mysql) return fromMysqlUrl(flags.mysql, '--mysql', env, timeouts);
  const databaseUrl = env.DATABASE_URL;
  if (databaseUrl) {
    if (POSTGRES_SCHEMES.some((s) => databaseUrl.startsWith(s))) {
      return fromPostgresUrl(databaseUrl, 'DATABASE_URL', env, timeouts);
    }
    if (MYSQL_SCHEMES.some((s) => databaseUrl.startsWith(s))) {
      return fromMysqlUrl(databaseUrl, 'DATABASE_URL', env, timeouts);
    }
    throw new UsageError(
      'DATABASE_URL: expected a postgres://, postgresql://, mysql:// or mariadb:// URL',
    );
  }
  if (env.PGHOST || env.PGPORT || env.PGUSER || env.PGDATABASE || env.PGSERVICE) {
    const user = env.PGUSER || osUser();
    return {
      engine: 'postgres',
      host: env.PGHOST || 'localhost',
      port: parsePort(env.PGPORT ?? '5432', 'PGPORT'),
      user,
      password: env.PGPASSWORD || undefined,
      database: env.PGDATABASE || user,
      from: 'PGHOST/PGPORT/PGUSER/PGDATABASE',
      ...timeouts,
    };
  }
  if (env.MYSQL_HOST || env.MYSQL_TCP_PORT || env.MYSQL_PWD) {
    return {
      engine: 'mysql',
      host: env.MYSQL_HOST || 'localhost',
      port: parsePort(env.MYSQL_TCP_PORT ?? '3306', 'MYSQL_TCP_PORT'),
      user: env.USER || osUser(),
      password: env.MYSQL_PWD || undefined,
      // The MySQL client has no variable for a default database; poolctl needs none.
      database: '',
      from: 'MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_PWD',
      ...timeouts,
    };
  }
  throw new UsageError(
    'no database target: pass --pg postgres://user@host:5432/db or --mysql mysql://user@host:3306/, ' +
      'or set DATABASE_URL, PGHOST or MYSQL_HOST',
  );
}

/** `mysql://user:pw@host:3306/db` or `mariadb://…`; what the URL leaves out, the MySQL variables fill. */
function fromMysqlUrl(
  url: string,
  from: string,
  env: NodeJS.ProcessEnv,
  timeouts: { connectTimeoutMs: number; statementTimeoutMs: number },
): DatabaseTargetSpec {
  if (!MYSQL_SCHEMES.some((s) => url.startsWith(s))) {
    throw new UsageError(`${from}: expected a mysql:// or mariadb:// URL`);
  }
  let parsed: URL;
  let user: string;
  let password: string;
  let database: string;
  try {
    parsed = new URL(url);
    user = decodeURIComponent(parsed.username);
    password = decodeURIComponent(parsed.password);
    database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  } catch {
    throw new UsageError(`${from}: not a valid connection URL`);
  }
  if (database.includes('/')) {
    throw new UsageError(`${from}: expected at most one database name after the port`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    engine: 'mysql',
    host: host || env.MYSQL_HOST || 'localhost',
    port: parsePort(parsed.port || env.MYSQL_TCP_PORT || '3306', `${from} port`),
    user: user || env.USER || osUser(),
    password: password || env.MYSQL_PWD || undefined,
    database,
    from,
    ...timeouts,
  };
}

async function fromPostgresUrl(
  url: string,
  from: string,
  env: NodeJS.ProcessEnv,
  timeouts: { connectTimeoutMs: number; statementTimeoutMs: number },
): Promise<DatabaseTargetSpec> {
  if (!POSTGRES_SCHEMES.some((s) => url.startsWith(s))) {
    throw new UsageError(`${from}: expected a postgres:// or postgresql:// URL`);
  }
  const { parse } = await import('pg-connection-string');
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(url);
  } catch {
    throw new UsageError(`${from}: not a valid connection URL`);
  }
  const user = parsed.user || env.PGUSER || osUser();
  return {
    engine: 'postgres',
    host: parsed.host || env.PGHOST || 'localhost',
    port: parsePort(parsed.port || env.PGPORT || '5432', `${from} port`),
    user,
    password: parsed.password || env.PGPASSWORD || undefined,
    database: parsed.database || env.PGDATABASE || user,
    from,
    ...timeouts,
  };
}

function parsePort(value: string, what: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`${what}: expected a port number 1–65535 (got "${value}")`);
  }
  return port;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'postgres';
  }
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
