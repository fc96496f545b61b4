import type { TlsSettings } from './types.js';

// The launcher (bin/poolctl) keeps NODE_EXTRA_CA_CERTS from Node, which would parse the file at
// every start, and hands it over as POOLCTL_EXTRA_CA_CERTS; adoptDeferredCaCerts leaves the file's
// name here. Unset when poolctl runs as `node bin/poolctl.js`: Node then loaded those CAs into its
// default store itself.
declare global {
  var poolctlDeferredExtraCaCerts: string | undefined;
}

/**
 * First thing a run does (src/cli.ts main): NODE_EXTRA_CA_CERTS goes back into the environment,
 * so child processes (kubectl, psql) see the user's setting unchanged, and the file is noted for
 * `withDeferredCaCerts`.
 */
export function adoptDeferredCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env.POOLCTL_EXTRA_CA_CERTS;
  if (file === undefined) return;
  delete env.POOLCTL_EXTRA_CA_CERTS;
  if (!file) return;
  env.NODE_EXTRA_CA_CERTS = file;
  globalThis.poolctlDeferredExtraCaCerts = file;
}

type TlsOptions = Exclude<TlsSettings, boolean>;

/** File → the CAs to trust (Node's roots and the file's), read on first use; undefined: unreadable. */
const trusted = new Map<string, Promise<string[] | undefined>>();

/**
 * The driver's TLS options with the CAs the launcher deferred: the trust Node would have had with
 * NODE_EXTRA_CA_CERTS, `tls.rootCertificates` and the file's certificates. Only when something
 * was deferred and the connection verifies the server's certificate against the default store:
 * a plain connection, `rejectUnauthorized: false` and the caller's own `ca` (which replaces the
 * default store in Node too) are returned as they are.
 */
export async function withDeferredCaCerts<T extends TlsSettings | undefined>(
  tls: T,
  file: string | undefined = globalThis.poolctlDeferredExtraCaCerts,
): Promise<T | TlsOptions> {
  if (!file || !tls) return tls;
  const options: TlsOptions = tls === true ? {} : tls;
  if (options.rejectUnauthorized === false || options.ca !== undefined) return tls;
  let ca = trusted.get(file);
  if (!ca) trusted.set(file, (ca = readTrust(file)));
  const certs = await ca;
  return certs ? { ...options, ca: certs } : tls;
}

async function readTrust(file: string): Promise<string[] | undefined> {
  const [{ rootCertificates }, { readFile }] = await Promise.all([
    import('node:tls'),
    import('node:fs/promises'),
  ]);
  try {
    const pem = await readFile(file, 'utf8');
    const extra = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    // A distribution's bundle repeats most of Node's roots: OpenSSL parses every `ca` entry on
    // connect (≈ 0.1 ms each), and a duplicate adds no trust.
    const known = new Set(rootCertificates.map(withoutSpace));
    return [...rootCertificates, ...extra.filter((cert) => !known.has(withoutSpace(cert)))];
  } catch (err) {
    // What Node does with an unreadable NODE_EXTRA_CA_CERTS: warn once, go on with its own roots.
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    process.stderr.write(
      `poolctl: warning: ignoring extra CA certificates from ${file} (NODE_EXTRA_CA_CERTS): ${reason}\n`,
    );
    return undefined;
  }
}

function withoutSpace(pem: string): string {
  return pem.replace(/\s+/g, '');
}

/** OpenSSL's verdicts for a chain that ends at no trusted CA (Node's `err.code`). */
const UNTRUSTED_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);
/** The same verdicts by message: mysql2 replaces the code with HANDSHAKE_SSL_ERROR. */
const UNTRUSTED_MESSAGE =
  /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate/i;

/**
 * A failed certificate check as the reason and the way forward, for a connect error's one line;
 * undefined for any other error. `caOption` is how the URL names a CA file (`sslrootcert`, `ssl-ca`).
 */
export function certificateProblem(err: unknown, caOption: string): string | undefined {
  const { code = '', message = '' } = (err ?? {}) as { code?: string; message?: string };
  if (UNTRUSTED_CODES.has(code) || UNTRUSTED_MESSAGE.test(message)) {
    return (
      `certificate not trusted (self-signed/unknown CA: ${message}): ` +
      `pass the CA with ${caOption}=FILE in the URL or NODE_EXTRA_CA_CERTS=FILE`
    );
  }
  if (
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    /does not match certificate's altnames/.test(message)
  ) {
    return `the certificate is for another host (${message}): connect by a name the certificate carries`;
  }
  return undefined;
}
