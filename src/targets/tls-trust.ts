// Certificate errors as one line with the way forward. Which CAs are trusted is the drivers' and
// Node's business: the URL's sslrootcert / ssl-ca (src/targets/resolve.ts), else Node's roots and
// NODE_EXTRA_CA_CERTS, which Node itself loads at start-up.

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
