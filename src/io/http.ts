// The HTTP seam: how poolctl asks an HTTP API (Prometheus). Injected like the Prompter, so a
// target adapter is tested against real servers (a real Prometheus, node http servers that fail
// on purpose). One deadline covers connect, headers and body; errors are one line and carry
// neither a header nor a URL's userinfo.
import { readFile } from 'node:fs/promises';
import { formatDuration } from '../runbook/params.js';

export interface HttpRequest {
  method: 'GET' | 'POST';
  /** Its userinfo, if any, is never sent nor printed: pass credentials as a header. */
  url: URL;
  headers?: Record<string, string>;
  /** Sent as application/x-www-form-urlencoded (Prometheus's POST form). */
  form?: Record<string, string>;
  /** The whole exchange: connect, TLS, headers and the last byte of the body. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  /** The Content-Type header, '' when the server sent none. */
  contentType: string;
  body: string;
}

export interface HttpClient {
  /** Resolves for any HTTP status; throws HttpError when no answer arrived. */
  request(req: HttpRequest): Promise<HttpResponse>;
}

export type HttpErrorReason = 'timeout' | 'unreachable' | 'tls' | 'aborted';

/** No answer: one line naming the address (without userinfo) and why; never a header. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly reason: HttpErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export interface HttpClientOptions {
  /** A PEM file of CAs trusted in addition to Node's own and NODE_EXTRA_CA_CERTS (a corporate CA). */
  caFile?: string;
  /** The flag an untrusted certificate's message points to (the only user today: Prometheus). */
  caFlag?: string;
}

/** OpenSSL's verdicts on a certificate chain (Node's `err.code`). */
const CERTIFICATE_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Why a connection failed, in words, by Node's error code. */
const NETWORK_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CLOSED: 'connection closed',
  HPE_INVALID_CONSTANT: 'not an HTTP answer',
  HPE_INVALID_STATUS: 'not an HTTP answer',
  HPE_INVALID_VERSION: 'not an HTTP answer',
};

/**
 * The real client, over undici (loaded on the first request: `poolctl --help` and a database-only
 * diagnose never load it). Without `caFile` it trusts what Node trusts (its roots and
 * NODE_EXTRA_CA_CERTS, which Node reads at start-up). With it, TLS needs an explicit CA list,
 * which replaces Node's (Node's docs: neither the well-known nor the extra certificates are used
 * when `ca` is given), so the list is Node's roots + NODE_EXTRA_CA_CERTS + the file.
 */
export function httpClient(opts: HttpClientOptions): HttpClient {
  const caFlag = opts.caFlag ?? '--prometheus-ca';
  // One agent per timeout: undici's signal does not interrupt a connect or a TLS handshake in
  // progress (measured: a silent TLS port held the call for undici's default 10 s), so the
  // connect limit is the agent's, set to the request's whole deadline.
  const agents = new Map<number, Promise<import('undici').Dispatcher>>();

  return {
    async request(req) {
      const where = `${req.url.origin}${req.url.pathname}`;
      if (req.signal?.aborted) throw new HttpError('aborted', `${where}: interrupted`);
      const deadline = AbortSignal.timeout(req.timeoutMs);
      const signal = req.signal ? AbortSignal.any([deadline, req.signal]) : deadline;
      const timedOut = (): HttpError =>
        new HttpError(
          'timeout',
          `${where}: no answer within ${formatDuration(req.timeoutMs / 1000)}`,
        );

      // undici is CommonJS: its exports are under `default` both in Node's ESM loader and in
      // the esbuild bundle (where the named exports of a dynamic import are absent).
      const { default: undici } = await import('undici');
      let dispatcher = agents.get(req.timeoutMs);
      if (!dispatcher) {
        dispatcher = agent(undici.Agent, opts.caFile, caFlag, req.timeoutMs);
        agents.set(req.timeoutMs, dispatcher);
      }
      const url = new URL(req.url);
      url.username = '';
      url.password = '';
      url.hash = '';
      const headers: Record<string, string> = { ...req.headers };
      let body: string | undefined;
      if (req.form) {
        body = new URLSearchParams(req.form).toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
      }
      // The answer, or the deadline / the caller's abort, whichever comes first: a connect in
      // progress does not see the signal, and the caller must not wait for it.
      let onStop: (() => void) | undefined;
      const stopped = new Promise<never>((_resolve, reject) => {
        onStop = () => reject(new Error('stopped'));
        signal.addEventListener('abort', onStop, { once: true });
      });
      const exchange = (async (): Promise<HttpResponse> => {
        const response = await undici.request(url, {
          method: req.method,
          headers,
          body,
          signal,
          dispatcher: await dispatcher,
          // The deadline above is the one that counts; these only keep undici's own defaults
          // (300 s) from outliving it.
          headersTimeout: req.timeoutMs,
          bodyTimeout: req.timeoutMs,
        });
        const contentType = response.headers['content-type'];
        return {
          status: response.statusCode,
          contentType: (Array.isArray(contentType) ? contentType[0] : contentType) ?? '',
          body: await response.body.text(),
        };
      })();
      exchange.catch(() => undefined); // its failure after the deadline is nobody's business
      try {
        return await Promise.race([exchange, stopped]);
      } catch (error) {
        if (error instanceof HttpError) throw error;
        if (deadline.aborted) throw timedOut();
        if (req.signal?.aborted) throw new HttpError('aborted', `${where}: interrupted`);
        const code = (error as { code?: string }).code ?? '';
        const cause = (error as { cause?: { code?: string } }).cause?.code ?? '';
        if (/^UND_ERR_(CONNECT|HEADERS|BODY)_TIMEOUT$/.test(code)) throw timedOut();
        for (const c of [code, cause]) {
          if (CERTIFICATE_CODES.has(c)) {
            throw new HttpError(
              'tls',
              `${where}: certificate not trusted (${c}): pass the CA with ${caFlag} FILE or NODE_EXTRA_CA_CERTS=FILE`,
            );
          }
          const words = NETWORK_WORDS[c] ?? (/^E[A-Z]+$/.test(c) ? c : undefined);
          if (words) throw new HttpError('unreachable', `${where}: unreachable (${words})`);
        }
        if (/SSL|TLS/.test(code)) throw new HttpError('tls', `${where}: TLS failed (${code})`);
        throw error;
      } finally {
        if (onStop) signal.removeEventListener('abort', onStop);
      }
    },
  };
}

async function agent(
  Agent: typeof import('undici').Agent,
  caFile: string | undefined,
  caFlag: string,
  connectTimeoutMs: number,
): Promise<import('undici').Dispatcher> {
  if (!caFile) return new Agent({ connect: { timeout: connectTimeoutMs } });
  const tls = await import('node:tls');
  let pem: string;
  try {
    pem = await readFile(caFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new HttpError('tls', `${caFlag} ${caFile}: cannot read it (${code})`);
  }
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  // Node already warned at start-up when this file could not be read; it then trusts no extra CA.
  const extraPem = extra ? await readFile(extra, 'utf8').catch(() => '') : '';
  return new Agent({
    connect: { timeout: connectTimeoutMs, ca: [...tls.rootCertificates, extraPem, pem] },
  });
}
