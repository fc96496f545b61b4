import net from 'node:net';

/**
 * A loopback TCP proxy in front of a real server that can, on command, stop forwarding the
 * server's replies while keeping every connection open: the server "accepts and then stops
 * answering", as a hung host, a frozen VM or a half-dead load balancer does.
 */
export interface StallProxy {
  host: string;
  port: number;
  /** From now on, replies from the server are swallowed (connections stay open). */
  stall(): void;
  /**
   * Stalls as soon as a client sends bytes matching `pattern` (read as latin1): lets the
   * handshake and the first queries through and stalls in the middle of the run, e.g. at the
   * first statement that reads pg_stat_activity.
   */
  stallWhenClientSends(pattern: RegExp): void;
  /** Replies flow again (what was swallowed is lost); forgets a pending stallWhenClientSends. */
  resume(): void;
  close(): Promise<void>;
}

export async function startStallProxy(upstream: {
  host: string;
  port: number;
}): Promise<StallProxy> {
  let stalled = false;
  let trigger: RegExp | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const backend = net.connect(upstream.port, upstream.host);
    sockets.add(client).add(backend);
    client.on('data', (chunk) => {
      if (trigger?.test(chunk.toString('latin1'))) stalled = true;
      backend.write(chunk);
    });
    backend.on('data', (chunk) => {
      if (!stalled) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      backend.destroy();
      sockets.delete(client);
      sockets.delete(backend);
    };
    client.on('close', end).on('error', end);
    backend.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    stall: () => {
      stalled = true;
    },
    stallWhenClientSends: (pattern) => {
      trigger = pattern;
    },
    resume: () => {
      stalled = false;
      trigger = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
