import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';

/** What a stub saw of one request. */
export interface StubRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A node http(s) server on 127.0.0.1 that answers as the test says: 5xx, garbage, silence. */
export interface HttpStub {
  /** http(s)://127.0.0.1:<port> */
  url: string;
  port: number;
  requests: StubRequest[];
  close(): Promise<void>;
}

export type StubHandler = (req: StubRequest, res: http.ServerResponse) => void;

export async function startHttpStub(
  handler: StubHandler,
  opts: { tls?: { cert: string; key: string } } = {},
): Promise<HttpStub> {
  const requests: StubRequest[] = [];
  const sockets = new Set<net.Socket>();
  const listener: http.RequestListener = (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(seen);
      handler(seen, res);
    });
  };
  const server = opts.tls ? https.createServer(opts.tls, listener) : http.createServer(listener);
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A throwaway CA (openssl) and a server certificate it signs for localhost and 127.0.0.1. */
export interface TestCa {
  /** The CA certificate's file (PEM): what --prometheus-ca / NODE_EXTRA_CA_CERTS is given. */
  caFile: string;
  caPem: string;
  /** The server's certificate and key (PEM). */
  cert: string;
  key: string;
}

export function makeTestCa(dir: string, name = 'ca'): TestCa {
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const days = ['-days', '2'];
  const f = (suffix: string): string => `${name}-${suffix}`;
  openssl(
    'req',
    '-x509',
    ...ec,
    ...days,
    '-subj',
    `/CN=poolctl test ${name}`,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  openssl(
    'req',
    ...ec,
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=localhost',
  );
  writeFileSync(path.join(dir, f('san.ext')), 'subjectAltName = DNS:localhost, IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    ...days,
    '-extfile',
    f('san.ext'),
    '-out',
    f('server.pem'),
  );
  const caFile = path.join(dir, f('ca.pem'));
  return {
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    cert: readFileSync(path.join(dir, f('server.pem')), 'utf8'),
    key: readFileSync(path.join(dir, f('server.key')), 'utf8'),
  };
}
