import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { UsageError } from '../errors.js';
import type { DatabaseTargetSpec, TlsSettings } from './types.js';

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
 * MySQL client's MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_UNIX_PORT/MYSQL_PWD (user: USER). Passwords not in the URL come
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
      ...postgresTls(undefined, {}, env, 'PGSSLMODE'),
      ...timeouts,
    };
  }
  if (env.MYSQL_HOST || env.MYSQL_TCP_PORT || env.MYSQL_PWD || env.MYSQL_UNIX_PORT) {
    const socket =
      (!env.MYSQL_HOST || env.MYSQL_HOST === 'localhost') && !env.MYSQL_TCP_PORT
        ? env.MYSQL_UNIX_PORT
        : undefined;
    return {
      engine: 'mysql',
      host: socket || env.MYSQL_HOST || 'localhost',
      port: parsePort(env.MYSQL_TCP_PORT ?? '3306', 'MYSQL_TCP_PORT'),
      user: env.USER || osUser(),
      password: env.MYSQL_PWD || undefined,
      // The MySQL client has no variable for a default database; poolctl needs none.
      database: '',
      from: 'MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_UNIX_PORT/MYSQL_PWD',
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
  // `mysql://app@/appdb?socket=…` names no host, as MySQL's own URIs may; WHATWG URLs need one.
  const hostless = /^[a-z]+:\/\/([^/?#]*@)?\//i.test(url);
  try {
    parsed = new URL(hostless ? url.replace(/^([a-z]+:\/\/[^/?#]*?)\//i, '$1localhost/') : url);
    user = decodeURIComponent(parsed.username);
    password = decodeURIComponent(parsed.password);
    database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  } catch {
    throw new UsageError(`${from}: not a valid connection URL`);
  }
  if (database.includes('/')) {
    throw new UsageError(`${from}: expected at most one database name after the port`);
  }
  const host = hostless ? '' : parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  // A Unix socket, as the mysql client takes it: ?socket=PATH, or MYSQL_UNIX_PORT when the URL
  // names no host (or localhost) and no port. The adapter connects to a host that is a path
  // through that socket; host and port are then not used.
  const socket =
    parsed.searchParams.get('socket') ||
    ((host === '' || host === 'localhost') && !parsed.port ? env.MYSQL_UNIX_PORT : undefined);
  return {
    engine: 'mysql',
    host: socket || host || env.MYSQL_HOST || 'localhost',
    port: parsePort(parsed.port || env.MYSQL_TCP_PORT || '3306', `${from} port`),
    user: user || env.USER || osUser(),
    password: password || env.MYSQL_PWD || undefined,
    database,
    from,
    tls: mysqlTls(parsed.searchParams, from),
    ...timeouts,
  };
}

const MYSQL_SSL_MODES = ['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'];

/**
 * The mysql client's `--ssl-mode` and `--ssl-ca` as URL parameters: `?ssl-mode=VERIFY_IDENTITY`,
 * `&ssl-ca=/path/ca.pem`. REQUIRED encrypts without checking the certificate (unless a CA is
 * given); VERIFY_CA checks it against the CA (Node's default CAs without ssl-ca), VERIFY_IDENTITY
 * also the host name. A CA alone means VERIFY_CA, as in the client. No PREFERRED: mysql2 cannot
 * fall back to a plain connection.
 */
function mysqlTls(params: URLSearchParams, from: string): TlsSettings | undefined {
  // Another spelling (`ssl=true`, Connector/J's `sslMode`) would otherwise connect in plain text.
  for (const name of params.keys()) {
    if (/ssl/i.test(name) && name !== 'ssl-mode' && name !== 'ssl-ca') {
      throw new UsageError(
        `${from}: unknown parameter "${name}": TLS is ?ssl-mode=${MYSQL_SSL_MODES.join('|')} and &ssl-ca=FILE`,
      );
    }
  }
  const mode = params.get('ssl-mode')?.toUpperCase() ?? (params.has('ssl-ca') ? 'VERIFY_CA' : '');
  if (params.has('ssl-mode') && !MYSQL_SSL_MODES.includes(mode)) {
    throw new UsageError(
      `${from}: ssl-mode: expected ${MYSQL_SSL_MODES.join(', ')} (got "${mode}")`,
    );
  }
  if (!mode || mode === 'DISABLED') return undefined;
  const caFile = params.get('ssl-ca');
  const ca = caFile ? { ca: readCa(caFile, from) } : {};
  if (mode === 'REQUIRED') return caFile ? ca : { rejectUnauthorized: false };
  return mode === 'VERIFY_IDENTITY' ? { ...ca, verifyIdentity: true } : ca;
}

/** A CA file named by `what` (ssl-ca, sslrootcert), read now: a bad path is a usage error. */
function readCa(file: string, from: string, what = 'ssl-ca'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${from}: ${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
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
  // sslmode and sslrootcert are read here, as libpq reads them (with PGSSLMODE, PGSSLROOTCERT and
  // ~/.postgresql/root.crt); pg-connection-string keeps the rest (sslcert, sslkey, …).
  const mark = url.indexOf('?');
  const base = mark < 0 ? url : url.slice(0, mark);
  const params = new URLSearchParams(mark < 0 ? '' : url.slice(mark + 1));
  const urlMode = params.get('sslmode') ?? pgSslParam(params.get('ssl'));
  const urlRootCert = params.get('sslrootcert') ?? undefined;
  for (const name of ['sslmode', 'sslrootcert', 'ssl']) params.delete(name);
  let parsed: ReturnType<typeof parse>;
  try {
    const rest = params.toString();
    parsed = parse(rest ? `${base}?${rest}` : base);
  } catch (err) {
    const reason = (err as Error)?.message?.split('. ')[0];
    throw new UsageError(`${from}: not a valid connection URL${reason ? ` (${reason})` : ''}`);
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
    ...postgresTls(
      urlMode,
      { rootCert: urlRootCert, clientCert: typeof parsed.ssl === 'object' ? parsed.ssl : {} },
      env,
      from,
    ),
    ...timeouts,
  };
}

/** pg's own `?ssl=`: true verifies like verify-full, no-verify does not check, false is plain. */
function pgSslParam(value: string | null): string | undefined {
  if (value === null) return undefined;
  if (value === 'no-verify') return 'no-verify';
  return ['false', '0', ''].includes(value) ? 'disable' : 'verify-full';
}

const POSTGRES_SSL_MODES = [
  'disable',
  'allow',
  'prefer',
  'require',
  'verify-ca',
  'verify-full',
  'no-verify',
];

/**
 * TLS for PostgreSQL as libpq (psql) reads it: the URL's sslmode, else PGSSLMODE (default: a
 * plain connection); the URL's sslrootcert, else PGSSLROOTCERT, else ~/.postgresql/root.crt when
 * it exists. `allow`/`prefer` try TLS without checking the certificate and fall back to a plain
 * connection where the server has no TLS; `require` encrypts without checking, unless a root
 * certificate is there (then, as in libpq, like `verify-ca`); `verify-ca` checks the chain,
 * `verify-full` the host name too (against the root certificate, else Node's CAs and
 * NODE_EXTRA_CA_CERTS); pg's `no-verify` encrypts without checking.
 */
function postgresTls(
  urlMode: string | undefined,
  files: { rootCert?: string; clientCert?: object },
  env: NodeJS.ProcessEnv,
  from: string,
): Pick<DatabaseTargetSpec, 'tls' | 'tlsFallbackToPlain'> {
  const mode = urlMode ?? env.PGSSLMODE;
  if (mode === undefined || mode === 'disable')
    return { tls: mode === 'disable' ? false : undefined };
  if (!POSTGRES_SSL_MODES.includes(mode)) {
    throw new UsageError(
      `${from}: sslmode: expected ${POSTGRES_SSL_MODES.join(', ')} (got "${mode}")`,
    );
  }
  const rootFile = files.rootCert ?? env.PGSSLROOTCERT ?? defaultRootCert(env);
  // `system` (libpq 16): the system's CAs, which here are Node's and NODE_EXTRA_CA_CERTS.
  const ca =
    rootFile && rootFile !== 'system' && mode !== 'no-verify'
      ? readCa(rootFile, from, 'sslrootcert')
      : undefined;
  const base = { ...files.clientCert, ...(ca ? { ca } : {}) };
  const unchecked = { ...base, rejectUnauthorized: false };
  const chainOnly = { ...base, checkServerIdentity: () => undefined };
  switch (mode) {
    case 'allow':
    case 'prefer':
      return { tls: unchecked, tlsFallbackToPlain: true };
    case 'no-verify':
      return { tls: unchecked };
    case 'require':
      return { tls: ca ? chainOnly : unchecked };
    case 'verify-ca':
      return { tls: chainOnly };
    default:
      return { tls: base };
  }
}

/** libpq's default root certificate file, when there is one. */
function defaultRootCert(env: NodeJS.ProcessEnv): string | undefined {
  const home = env.HOME;
  if (!home) return undefined;
  const file = `${home}/.postgresql/root.crt`;
  return existsSync(file) ? file : undefined;
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
