// A MySQL/MariaDB target from a URL or the mysql client's environment, read as the client reads them.
import { UsageError } from '../errors.js';
import type { SpecTimeouts } from '../engines.js';
import { osUser, parsePort, readCa } from './spec-common.js';
import type { DatabaseTargetSpec, TlsSettings } from './types.js';

/** The mysql client's MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_UNIX_PORT/MYSQL_PWD (user: USER). */
export function fromEnv(env: NodeJS.ProcessEnv, timeouts: SpecTimeouts): DatabaseTargetSpec {
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

/** `mysql://user:pw@host:3306/db` or `mariadb://…`; what the URL leaves out, the MySQL variables fill. */
export function fromUrl(
  url: string,
  from: string,
  env: NodeJS.ProcessEnv,
  timeouts: SpecTimeouts,
): DatabaseTargetSpec {
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
