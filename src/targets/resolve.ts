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

/**
 * Finds the database target from flags, then the conventional environment: `--pg URL`,
 * `DATABASE_URL`, then libpq's PGHOST/PGPORT/PGUSER/PGDATABASE. Passwords not in the URL are left
 * to the driver, which reads PGPASSWORD and ~/.pgpass as libpq does.
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
  if (flags.mysql) throw new UsageError('--mysql: MySQL targets are not supported yet');
  const databaseUrl = env.DATABASE_URL;
  if (databaseUrl) {
    if (POSTGRES_SCHEMES.some((s) => databaseUrl.startsWith(s))) {
      return fromPostgresUrl(databaseUrl, 'DATABASE_URL', env, timeouts);
    }
    throw new UsageError(
      'DATABASE_URL: expected a postgres:// or postgresql:// URL (MySQL targets are not supported yet)',
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
  throw new UsageError(
    'no database target: pass --pg postgres://user@host:5432/db, or set DATABASE_URL or PGHOST',
  );
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
    port: parsePort(parsed.port ?? env.PGPORT ?? '5432', `${from} port`),
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

/** `postgres://app@db:5432/appdb`: never a password. */
export function targetLabel(spec: DatabaseTargetSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.engine}://${encodeURIComponent(spec.user)}@${host}:${spec.port}/${spec.database}`;
}
