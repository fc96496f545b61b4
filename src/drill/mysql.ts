import mysql from 'mysql2/promise';
import { connectError, mysqlSsl } from '../targets/mysql.js';
import { targetLabel } from '../targets/resolve.js';
import type { DatabaseTargetSpec } from '../targets/types.js';
import type { DrillEngine, DrillKind, DrillSession, OpenRequest } from './types.js';

/**
 * Drill sessions on MySQL and MariaDB. Each kind ends in the state the process list shows:
 * - idle: ran a pool's health check (`SELECT 1`) and waits: Command `Sleep`;
 * - idleInTx: `START TRANSACTION WITH CONSISTENT SNAPSHOT` and waits: `Sleep`, with a row in
 *   information_schema.INNODB_TRX (a plain `START TRANSACTION; SELECT 1` opens nothing there);
 * - long: `SELECT SLEEP(n)` running: Command `Query`.
 * The program_name connection attribute carries the application (performance_schema
 * .session_connect_attrs, where the server keeps them).
 *
 * Release. MySQL has no protocol-level cancel, and closing the socket of a running `SLEEP(n)` does
 * not free its slot: the server notices the closed connection only at its next liveness check, up
 * to 5 seconds later (which is also the bound should the drill die without releasing). So the long
 * statements are ended on the server first with `KILL QUERY`, sent through one of the drill's own
 * idle sessions (an account may kill its own connections, and a full server has no slot for
 * another), else through a short-lived connection of its own. Then every session quits cleanly
 * (COM_QUIT), which rolls the open transactions back and leaves the server's aborted-connection
 * counters alone.
 *
 * The KILLs go one at a time, each after the previous victim's statement has ended: every
 * `SLEEP()` on a MariaDB server waits under one shared mutex, and a KILL that finds it taken (by
 * the victim of the KILL just before, still on its way out) can spin for 2 seconds. Measured here
 * on 300 sleeping statements: one multi-statement KILL batch took 14 to 44 s, back-to-back single
 * KILLs 25 ms to 4 s, a KILL after each victim's end 33 to 56 ms (1,000: 120 to 160 ms).
 */
const SETUP_SQL: Record<Exclude<DrillKind, 'long'>, string> = {
  idle: 'SELECT 1',
  idleInTx: 'START TRANSACTION WITH CONSISTENT SNAPSHOT',
};

/** How long one release step may take before the drill moves on (the server may be gone). */
const STEP_TIMEOUT_MS = 3_000;
/**
 * How long to wait for a killed statement to end before the next KILL. A KILL QUERY that reaches
 * a connection before its statement has started is lost (the flag is cleared when the statement
 * begins): the statements still running after a pass are killed again in the next.
 */
const VICTIM_WAIT_MS = 100;
const KILL_PASSES = 3;
/**
 * How long release waits for statements it could not kill to be gone (their sockets closed: the
 * server's liveness check ends them within 5 seconds), polling every RECLAIM_POLL_MS.
 */
const RECLAIM_MS = 8_000;
const RECLAIM_POLL_MS = 100;
/** MySQL/MariaDB: unknown thread id (the connection has gone since). */
const ER_NO_SUCH_THREAD = 1094;
/** How long after a statement's error the connection's end may still arrive. */
const CONNECTION_END_GRACE_MS = 50;
/** The program_name of the short-lived control connection, when the drill has no idle session. */
const CONTROL_PROGRAM = 'poolctl';

interface MysqlErrorLike {
  code?: string;
  errno?: number;
  message?: string;
  fatal?: boolean;
}

/** One connection the engine holds, with what release needs to know about it. */
interface Held {
  readonly kind: DrillKind;
  readonly id: number;
  readonly conn: mysql.Connection;
  /** The long statement, settled (never rejected) once it ends; undefined for the other kinds. */
  running?: Promise<void>;
  statementDone: boolean;
  /** The drill itself sent a KILL QUERY to this statement: its interruption is no news. */
  killedByDrill: boolean;
  /** COM_QUIT sent or the socket destroyed. */
  closing: boolean;
  /** The server closed the connection (after our COM_QUIT, or from outside). */
  ended: boolean;
  /** Failed as the control connection (lost): not to be tried again. */
  broken: boolean;
}

export function mysqlDrill(spec: DatabaseTargetSpec): DrillEngine {
  const label = targetLabel(spec);
  /** Every connection of this drill that is still open. */
  const live = new Set<Held>();
  let stopping: Promise<void> | undefined;

  // The URL's ssl-mode and ssl-ca, as poolctl's own connection has them.
  const ssl = mysqlSsl(spec);
  const connect = async (programName: string): Promise<mysql.Connection> =>
    mysql.createConnection({
      host: spec.host,
      port: spec.port,
      user: spec.user,
      password: spec.password,
      database: spec.database || undefined,
      connectTimeout: spec.connectTimeoutMs,
      connectAttributes: { program_name: programName },
      ssl,
    });

  const runningNow = (): Held[] => [...live].filter((h) => !h.statementDone && !h.ended);

  /** Runs `fn` on an idle session of the drill, else on a short-lived connection of its own. */
  const withControl = async (fn: (conn: mysql.Connection) => Promise<void>): Promise<void> => {
    for (;;) {
      const spare = [...live].find((h) => h.statementDone && !h.closing && !h.ended && !h.broken);
      if (!spare) break;
      try {
        return await fn(spare.conn);
      } catch (err) {
        // A server error (not a lost connection) would be the same on any session: give up.
        if ((err as MysqlErrorLike)?.errno !== undefined) throw err;
        spare.broken = true;
      }
    }
    const conn = await connect(CONTROL_PROGRAM);
    conn.on('error', () => {});
    try {
      await fn(conn);
    } finally {
      await settled(
        conn.end().catch(() => {}),
        STEP_TIMEOUT_MS,
      );
      conn.destroy();
    }
  };

  /**
   * Ends every long statement of the drill on the server. The first release starts it and the
   * others wait for the same run: by then none of the drill's idle sessions has quit, so one of
   * them can carry the KILLs.
   */
  const stopLongStatements = (): Promise<void> =>
    (stopping ??= (async () => {
      for (let pass = 0; pass < KILL_PASSES && runningNow().length > 0; pass++) {
        try {
          await withControl(async (conn) => {
            for (const held of runningNow()) {
              held.killedByDrill = true;
              await conn.query(`KILL QUERY ${held.id}`).catch((err: MysqlErrorLike) => {
                if (err.errno !== ER_NO_SUCH_THREAD) throw err;
              });
              await settled(held.running!, VICTIM_WAIT_MS);
            }
          });
        } catch {
          break; // no connection to send the KILLs through
        }
      }
      const left = runningNow();
      if (left.length > 0) await reclaim(left);
    })().finally(() => (stopping = undefined)));

  /**
   * Statements KILL QUERY could not end, or no connection to send it through (a server full of
   * the drill's long sessions alone, with no slot for another): their sockets go, and the server
   * ends them at its next liveness check, within 5 seconds. Waits until the process list shows
   * them gone (the first of them frees a slot to look from), so that "released" means released.
   */
  const reclaim = async (stuck: Held[]): Promise<void> => {
    for (const held of stuck) {
      held.closing = true;
      held.conn.destroy();
      live.delete(held);
    }
    const ids = stuck.map((h) => h.id).join(',');
    const deadline = Date.now() + RECLAIM_MS;
    const pause = () => new Promise((resolve) => setTimeout(resolve, RECLAIM_POLL_MS));
    let gone = false;
    while (!gone && Date.now() < deadline) {
      try {
        await withControl(async (conn) => {
          while (Date.now() < deadline) {
            // An account sees its own connections in the process list without PROCESS.
            const [rows] = await conn.query<mysql.RowDataPacket[]>(
              `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID IN (${ids})`,
            );
            if (Number(rows[0]?.n) === 0) {
              gone = true;
              return;
            }
            await pause();
          }
        });
      } catch {
        await pause(); // no slot yet
      }
    }
  };

  return {
    async open(request: OpenRequest): Promise<DrillSession> {
      const conn = await connect(request.application);
      const held: Held = {
        kind: request.kind,
        id: conn.threadId ?? 0,
        conn,
        statementDone: true,
        killedByDrill: false,
        closing: false,
        ended: false,
        broken: false,
      };
      let lastError = '';
      let releasing = false;
      let released: Promise<void> | undefined;
      let onEnded: () => void = () => {};
      const ended = new Promise<void>((resolve) => (onEnded = resolve));
      const session: DrillSession = {
        kind: request.kind,
        pid: held.id,
        application: request.application,
        release: () => (released ??= release()),
      };

      const release = async (): Promise<void> => {
        releasing = true;
        if (held.ended || held.closing) return;
        await stopLongStatements();
        if (held.closing) return; // reclaimed: its socket is gone already
        held.closing = true;
        // COM_QUIT, then wait for the server to close its end: the slot is free by then.
        await settled(Promise.all([conn.end().catch(() => {}), ended]), STEP_TIMEOUT_MS);
        conn.destroy();
        live.delete(held);
      };

      // A connection killed while idle reports here; without a listener the process would crash.
      conn.on('error', (err: MysqlErrorLike) => (lastError ||= messageOf(err)));
      conn.once('end', () => {
        held.ended = true;
        live.delete(held);
        onEnded();
        if (releasing || held.closing) return;
        releasing = true;
        request.onExternal({
          session,
          what: 'ended',
          reason: lastError || 'the server closed the connection',
        });
      });
      live.add(held);

      try {
        if (request.kind === 'long') {
          held.statementDone = false;
          held.running = conn.query(`SELECT SLEEP(${Math.ceil(request.longSeconds)})`).then(
            () => {
              held.statementDone = true;
            },
            (err: MysqlErrorLike) => {
              held.statementDone = true;
              // Interrupted from outside while still connected (KILL QUERY, max_statement_time):
              // say so. A KILL CONNECTION can send its error just before the socket closes: a
              // moment later, 'end' has told that story instead.
              const outside = () =>
                !releasing && !held.killedByDrill && !held.closing && !held.ended && !err.fatal;
              if (!outside()) return;
              setTimeout(() => {
                if (outside()) {
                  request.onExternal({ session, what: 'statement-ended', reason: messageOf(err) });
                }
              }, CONNECTION_END_GRACE_MS);
            },
          );
        } else {
          await conn.query(SETUP_SQL[request.kind]);
        }
      } catch (err) {
        releasing = true;
        held.closing = true;
        live.delete(held);
        conn.destroy();
        throw err;
      }
      return session;
    },

    isOutOfSlots(err: unknown): boolean {
      const { code, errno } = (err ?? {}) as MysqlErrorLike;
      return errno === 1040 || code === 'ER_CON_COUNT_ERROR';
    },

    connectError: (err: unknown) => connectError(err, spec, label),
    messageOf,
  };
}

function messageOf(err: unknown): string {
  return (err as MysqlErrorLike)?.message ?? String(err);
}

/** Waits for the promise to settle, or for `ms`, whichever comes first; never rejects. */
function settled(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}
