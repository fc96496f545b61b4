import mysql from 'mysql2/promise';
import pg from 'pg';

/**
 * Real idle clients that connect again the moment their connection is killed, as an application
 * pool that keeps its size does (HikariCP's minimumIdle, a pool refilled on error): a kill frees
 * their slots for a few milliseconds only.
 */
export interface ReconnectingClients {
  /** Connections open now. */
  connected(): number;
  /** Connections opened again after one was killed, since the start. */
  reconnects(): number;
  /** Resolves once `n` connections are open (throws after `timeoutMs`). */
  waitConnected(n: number, timeoutMs?: number): Promise<void>;
  /** Stops reconnecting and ends every connection; never throws. */
  close(): Promise<void>;
}

export interface ReconnectingOptions {
  count: number;
  /** application_name (PostgreSQL) or program_name (MySQL); default `api`. */
  appName?: string;
}

interface Conn {
  end(): Promise<unknown>;
  on(event: 'error' | 'end', fn: () => void): unknown;
}

const RETRY_MS = 20;

/** Opens `count` idle clients to `url` (postgres:// or mysql://) that reconnect when killed. */
export async function reconnectingClients(
  url: string,
  opts: ReconnectingOptions,
): Promise<ReconnectingClients> {
  const appName = opts.appName ?? 'api';
  const live = new Set<Conn>();
  let reconnects = 0;
  let closing = false;

  const connect = async (): Promise<Conn> => {
    if (url.startsWith('mysql:')) {
      const c = await mysql.createConnection({
        uri: url,
        connectAttributes: { program_name: appName },
      });
      return c;
    }
    const c = new pg.Client({ connectionString: url, application_name: appName });
    c.on('error', () => undefined);
    await c.connect().catch(async (err: unknown) => {
      await c.end().catch(() => undefined);
      throw err;
    });
    return c;
  };

  /** One client: connected, and connected again whenever its connection ends. */
  const keep = async (again: boolean): Promise<void> => {
    for (;;) {
      if (closing) return;
      try {
        const conn = await connect();
        if (closing) {
          await conn.end().catch(() => undefined);
          return;
        }
        live.add(conn);
        if (again) reconnects++;
        let gone = false;
        const lost = (): void => {
          if (gone) return;
          gone = true;
          live.delete(conn);
          void keep(true);
        };
        conn.on('error', lost);
        conn.on('end', lost);
        return;
      } catch {
        // The server is full, or restarting: try again shortly, as a pool does.
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  };

  await Promise.all(Array.from({ length: opts.count }, () => keep(false)));

  return {
    connected: () => live.size,
    reconnects: () => reconnects,
    async waitConnected(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (live.size < n) {
        if (Date.now() > deadline)
          throw new Error(`reconnectingClients: ${live.size} of ${n} connected`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      closing = true;
      await Promise.all([...live].map((c) => c.end().catch(() => undefined)));
      live.clear();
    },
  };
}
