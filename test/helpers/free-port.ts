import net from 'node:net';

/**
 * A TCP port that was free on `host` a moment ago. Another process may take it before the caller
 * binds it, so servers started on it should retry with a fresh port when the bind fails.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error(`could not read the port of a server bound to ${host}:0`));
      });
    });
  });
}
