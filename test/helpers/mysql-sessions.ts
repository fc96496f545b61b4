import mysql from 'mysql2/promise';

/** Real client connections to a MySQL/MariaDB server that occupy slots until `close()`. */
export interface HeldMysqlSessions {
  /** Connection ids of every session: the sleeping ones first, then open transactions, then long. */
  ids: number[];
  byKind: { sleep: number[]; openTx: number[]; long: number[] };
  /** Ends every session (killing the long queries first); never throws. */
  close(): Promise<void>;
}

export interface HoldMysqlSessionsOptions {
  /** Connected and doing nothing: Command 'Sleep'. */
  sleep?: number;
  /**
   * `START TRANSACTION WITH CONSISTENT SNAPSHOT` and left open: Command 'Sleep' with a row in
   * information_schema.INNODB_TRX. (A plain START TRANSACTION opens nothing there until the first
   * InnoDB read.)
   */
  openTx?: number;
  /** `SELECT SLEEP(3600)` running: Command 'Query'. */
  long?: number;
  /** The program_name connection attribute, round-robin; default api, worker, batch. */
  programNames?: string[];
  /** How many connects run at once; a thousand simultaneous ones time out. Default 50. */
  batchSize?: number;
}

type Kind = keyof HeldMysqlSessions['byKind'];

interface Session {
  kind: Kind;
  conn: mysql.Connection;
  id: number;
  /** The long query, settled (never rejected) once it ends. */
  running?: Promise<void>;
}

export const LONG_QUERY = 'SELECT SLEEP(3600)';
const CLOSE_TIMEOUT_MS = 3_000;
const ACTIVE_TIMEOUT_MS = 10_000;

/**
 * Opens the sessions and resolves once the process list shows the long queries running. If a
 * connect fails (e.g. error 1040, too many connections), closes what it opened and rethrows.
 *
 * Watching the long queries start, and killing them on close, needs one connection that is not
 * busy: a sleeping or open-transaction session of the same set, else a short-lived extra one.
 */
export async function holdMysqlSessions(
  url: string,
  opts: HoldMysqlSessionsOptions,
): Promise<HeldMysqlSessions> {
  const names = opts.programNames?.length ? opts.programNames : ['api', 'worker', 'batch'];
  const batchSize = Math.max(1, opts.batchSize ?? 50);
  const kinds: Kind[] = [
    ...Array<Kind>(opts.sleep ?? 0).fill('sleep'),
    ...Array<Kind>(opts.openTx ?? 0).fill('openTx'),
    ...Array<Kind>(opts.long ?? 0).fill('long'),
  ];
  // Indexed like `kinds`, so ids come out in a stable order whatever order connects finish in.
  const slots: (Session | undefined)[] = [];
  const opened = (): Session[] => slots.filter((s): s is Session => s !== undefined);
  let sessions: Session[] = [];

  try {
    await inBatches(kinds, batchSize, async (kind, i) => {
      const conn = await connect(url, names[i % names.length]!);
      const session: Session = { kind, conn, id: conn.threadId ?? 0 };
      slots[i] = session;
      if (kind === 'openTx') await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    });
    sessions = opened();

    const long = sessions.filter((s) => s.kind === 'long');
    for (const session of long) {
      session.running = session.conn.query(LONG_QUERY).then(
        () => undefined,
        () => undefined,
      );
    }
    if (long.length > 0) {
      await withHelper(url, sessions, (helper) =>
        waitUntilRunning(
          helper,
          long.map((s) => s.id),
        ),
      );
    }
  } catch (error) {
    await closeAll(url, opened());
    throw error;
  }

  const idsOf = (kind: Kind): number[] => sessions.filter((s) => s.kind === kind).map((s) => s.id);
  let closing: Promise<void> | undefined;
  return {
    ids: sessions.map((s) => s.id),
    byKind: { sleep: idsOf('sleep'), openTx: idsOf('openTx'), long: idsOf('long') },
    close: () => (closing ??= closeAll(url, sessions)),
  };
}

async function connect(url: string, programName: string): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({
    uri: url,
    connectTimeout: 10_000,
    connectAttributes: { program_name: programName },
  });
  // A session killed by a test (poolctl's kill) must not crash the process.
  conn.on('error', () => undefined);
  return conn;
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

/** Runs `fn` on an idle session of the set, else on a short-lived extra connection. */
async function withHelper<T>(
  url: string,
  sessions: Session[],
  fn: (conn: mysql.Connection) => Promise<T>,
): Promise<T> {
  const idle = sessions.find((s) => s.kind !== 'long')?.conn;
  if (idle) return fn(idle);
  let extra: mysql.Connection;
  try {
    extra = await connect(url, 'poolctl-test-helper');
  } catch (error) {
    throw new Error(
      'holdMysqlSessions: no free slot for a helper connection; ' +
        'add a sleeping session to the set or leave one slot free',
      { cause: error },
    );
  }
  try {
    return await fn(extra);
  } finally {
    await extra.end().catch(() => extra.destroy());
  }
}

async function waitUntilRunning(helper: mysql.Connection, ids: number[]): Promise<void> {
  const deadline = Date.now() + ACTIVE_TIMEOUT_MS;
  for (;;) {
    // An account without PROCESS sees its own threads, which these are.
    const [rows] = await helper.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
        WHERE ID IN (?) AND COMMAND = 'Query' AND INFO = ?`,
      [ids, LONG_QUERY],
    );
    const n = Number(rows[0]!.n);
    if (n === ids.length) return;
    if (Date.now() > deadline) {
      throw new Error(`holdMysqlSessions: only ${n} of ${ids.length} long queries started`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function closeAll(url: string, sessions: Session[]): Promise<void> {
  // Closing a socket does not stop SLEEP(3600) on the server, which would hold its slot for an
  // hour: kill those queries first (an account may kill its own threads).
  const long = sessions.filter((s) => s.running);
  if (long.length > 0) {
    await withTimeout(killQueries(url, sessions, long));
    await Promise.all(long.map((s) => withTimeout(s.running!)));
  }
  await Promise.all(
    sessions.map(async (s) => {
      await withTimeout(s.conn.end().catch(() => undefined));
      s.conn.destroy();
    }),
  );
}

/** KILL QUERY through any live idle session of the set (a test may have killed some), else anew. */
async function killQueries(url: string, sessions: Session[], long: Session[]): Promise<void> {
  const kill = async (helper: mysql.Connection): Promise<void> => {
    for (const s of long) {
      await helper.query(`KILL QUERY ${Number(s.id)}`).catch((error: { errno?: number }) => {
        if (error.errno !== 1094) throw error; // 1094: unknown thread id, already gone
      });
    }
  };
  for (const s of sessions) {
    if (s.kind === 'long') continue;
    try {
      return await kill(s.conn);
    } catch {
      // that one is gone too; try the next
    }
  }
  try {
    const extra = await connect(url, 'poolctl-test-helper');
    await kill(extra).finally(() => extra.end().catch(() => extra.destroy()));
  } catch {
    // nothing more to do: the server's stop() ends them
  }
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
