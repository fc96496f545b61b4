// A PostgreSQL target from a URL or libpq's environment, read the way libpq (psql) reads them.
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { SpecTimeouts } from '../engines.js';
import { osUser, parsePort, readCa } from './spec-common.js';
import type { DatabaseTargetSpec } from './types.js';

/** libpq's PGHOST/PGPORT/PGUSER/PGDATABASE; the password from PGPASSWORD or ~/.pgpass. */
export function fromEnv(env: NodeJS.ProcessEnv, timeouts: SpecTimeouts): DatabaseTargetSpec {
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

/** `postgres://…` or `postgresql://…`; what the URL leaves out, libpq's variables fill. */
export async function fromUrl(
  url: string,
  from: string,
  env: NodeJS.ProcessEnv,
  timeouts: SpecTimeouts,
): Promise<DatabaseTargetSpec> {
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
