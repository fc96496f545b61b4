import net from 'node:net';
import pg from 'pg';

/** Real client sessions that occupy connection slots until `close()`. */
export interface HeldSessions {
  /** Backend pids of every session: the idle ones first, then idle-in-transaction, then long. */
  pids: number[];
  byKind: { idle: number[]; idleInTx: number[]; long: number[] };
  /** Ends every session (cancelling the long queries first); never throws. */
  close(): Promise<void>;
}

export interface HoldSessionsOptions {
  /** Connected and doing nothing: state 'idle'. */
  idle?: number;
  /** `BEGIN; SELECT 1` and left open: state 'idle in transaction'. */
  idleInTx?: number;
  /** `SELECT pg_sleep(3600)` running: state 'active'. */
  long?: number;
  /** application_name of the sessions, round-robin; default api, worker, batch. */
  appNames?: string[];
  /** How many connects run at once; a thousand simultaneous ones time out. Default 50. */
  batchSize?: number;
}

type Kind = keyof HeldSessions['byKind'];

interface Session {
  kind: Kind;
  client: pg.Client;
  pid: number;
  /** The long query, settled (never rejected) once it ends. */
  running?: Promise<void>;
}

const LONG_QUERY = 'SELECT pg_sleep(3600)';
const CLOSE_TIMEOUT_MS = 3_000;
const ACTIVE_TIMEOUT_MS = 10_000;

/**
 * Opens the sessions and resolves once pg_stat_activity shows them in their states. If a connect
 * fails (e.g. SQLSTATE 53300, too many clients), closes what it opened and rethrows that error.
 *
 * Checking that the long queries run needs one session that is not busy: an idle one, else an
 * idle-in-transaction one before it begins its transaction, else a short-lived extra connection
 * (so a rig made only of long sessions needs one free slot while it starts).
 */
export async function holdSessions(url: string, opts: HoldSessionsOptions): Promise<HeldSessions> {
  const appNames = opts.appNames?.length ? opts.appNames : ['api', 'worker', 'batch'];
  const batchSize = Math.max(1, opts.batchSize ?? 50);
  const kinds: Kind[] = [
    ...Array<Kind>(opts.idle ?? 0).fill('idle'),
    ...Array<Kind>(opts.idleInTx ?? 0).fill('idleInTx'),
    ...Array<Kind>(opts.long ?? 0).fill('long'),
  ];
  // Indexed like `kinds`, so pids come out in a stable order whatever order connects finish in.
  const slots: (Session | undefined)[] = [];
  const opened = (): Session[] => slots.filter((s): s is Session => s !== undefined);
  let sessions: Session[] = [];

  try {
    await inBatches(kinds, batchSize, async (kind, i) => {
      const client = new pg.Client({
        connectionString: url,
        application_name: appNames[i % appNames.length],
      });
      client.on('error', () => undefined);
      await client.connect().catch((error: unknown) => {
        void client.end().catch(() => undefined);
        throw error;
      });
      const session: Session = { kind, client, pid: 0 };
      slots[i] = session;
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      session.pid = rows[0]!.pid;
    });
    sessions = opened();

    const long = sessions.filter((s) => s.kind === 'long');
    for (const session of long) {
      session.running = session.client.query(LONG_QUERY).then(
        () => undefined,
        () => undefined,
      );
    }
    if (long.length > 0) {
      const prober = sessions.find((s) => s.kind !== 'long')?.client;
      await waitUntilActive(
        prober ?? url,
        long.map((s) => s.pid),
      );
    }

    await inBatches(
      sessions.filter((s) => s.kind === 'idleInTx'),
      batchSize,
      (s) => s.client.query('BEGIN; SELECT 1'),
    );
  } catch (error) {
    await closeAll(opened());
    throw error;
  }

  const pidsOf = (kind: Kind): number[] =>
    sessions.filter((s) => s.kind === kind).map((s) => s.pid);
  let closing: Promise<void> | undefined;
  return {
    pids: sessions.map((s) => s.pid),
    byKind: { idle: pidsOf('idle'), idleInTx: pidsOf('idleInTx'), long: pidsOf('long') },
    close: () => (closing ??= closeAll(sessions)),
  };
}

async function inBatches<T>(
  items: T[],
  size: number,
  fn: (item: T, index: number) => Promise<unknown>,
): Promise<void> {
  for (let start = 0; start < items.length; start += size) {
    const results = await Promise.allSettled(
      items.slice(start, start + size).map((item, j) => fn(item, start + j)),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

async function waitUntilActive(prober: pg.Client | string, pids: number[]): Promise<void> {
  let client: pg.Client;
  if (typeof prober === 'string') {
    client = new pg.Client({ connectionString: prober, application_name: 'poolctl-test-probe' });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw new Error(
        'holdSessions: no free slot to check that the long sessions run; ' +
          'add an idle session to the rig or leave one slot free while it starts',
        { cause: error },
      );
    }
  } else {
    client = prober;
  }

  try {
    const deadline = Date.now() + ACTIVE_TIMEOUT_MS;
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND state = 'active' AND query = $2",
        [pids, LONG_QUERY],
      );
      if (rows[0]!.n === pids.length) return;
      if (Date.now() > deadline) {
        throw new Error(`holdSessions: only ${rows[0]!.n} of ${pids.length} long queries started`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    if (client !== prober) await client.end().catch(() => undefined);
  }
}

async function closeAll(sessions: Session[]): Promise<void> {
  await Promise.all(
    sessions.map(async (s) => {
      // Ending a client mid-query only drops the socket; the backend would sleep on for an hour
      // holding its slot. Cancel the query first, so the session ends cleanly and frees its slot.
      if (s.running) {
        await cancel(s.client);
        await withTimeout(s.running);
      }
      await withTimeout(s.client.end().catch(() => undefined));
    }),
  );
}

/** Sends a protocol CancelRequest for the client's backend; errors are ignored. */
function cancel(client: pg.Client): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: unknown; secretKey: unknown };
  if (typeof processID !== 'number' || typeof secretKey !== 'number') return Promise.resolve();
  return withTimeout(
    new Promise<void>((resolve) => {
      const target = client.host.startsWith('/')
        ? { path: `${client.host}/.s.PGSQL.${client.port}` }
        : { host: client.host, port: client.port };
      const socket = net.connect(target, () => {
        const packet = Buffer.alloc(16);
        packet.writeInt32BE(16, 0);
        packet.writeInt32BE(80877102, 4);
        packet.writeInt32BE(processID, 8);
        packet.writeInt32BE(secretKey, 12);
        socket.end(packet);
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    }),
  );
}

function withTimeout(promise: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}
