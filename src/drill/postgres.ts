import net from 'node:net';
import pg from 'pg';
import { connectError, passwordFromPgpass } from '../targets/postgres.js';
import { targetLabel } from '../targets/resolve.js';
import type { DatabaseTargetSpec } from '../targets/types.js';
import type { DrillEngine, DrillKind, DrillSession, OpenRequest } from './types.js';

/**
 * Drill sessions on PostgreSQL. Each kind ends in the state pg_stat_activity will show:
 * - idle: ran a pool's health check (`SELECT 1`) and waits: state `idle`;
 * - idleInTx: `BEGIN; SELECT 1` and waits: state `idle in transaction`, a real open transaction;
 * - long: `SELECT pg_sleep(n)` running: state `active`.
 */
const SETUP_SQL: Record<Exclude<DrillKind, 'long'>, string> = {
  idle: 'SELECT 1',
  idleInTx: 'BEGIN; SELECT 1',
};

/** How long one release step may take before the drill moves on (the server may be gone). */
const STEP_TIMEOUT_MS = 3_000;
/** A cancel can race the start of the statement it aims at; send it again after this long. */
const CANCEL_RETRY_MS = 1_000;
const CANCEL_ATTEMPTS = 3;

interface PgErrorLike {
  code?: string;
  message?: string;
}

export function postgresDrill(spec: DatabaseTargetSpec): DrillEngine {
  const label = targetLabel(spec);
  // ~/.pgpass is read once for the whole drill, not once per session.
  let pgpassPassword: Promise<string> | undefined;
  const password = spec.password ?? (() => (pgpassPassword ??= passwordFromPgpass(spec)));
  // The URL's TLS, as poolctl's own connection has it; sslmode=prefer simply without TLS (a
  // practice server on loopback, and no fallback to wait for on each of a thousand connects).
  const ssl = spec.tlsFallbackToPlain ? undefined : spec.tls;

  return {
    async open(request: OpenRequest): Promise<DrillSession> {
      const client = new pg.Client({
        host: spec.host,
        port: spec.port,
        user: spec.user,
        password,
        database: spec.database,
        application_name: request.application,
        connectionTimeoutMillis: spec.connectTimeoutMs,
        ssl,
      });
      let lastError = '';
      // A session terminated while idle reports here; without a listener the process would crash.
      client.on('error', (err: Error) => (lastError ||= err.message));
      try {
        await client.connect();
      } catch (err) {
        await client.end().catch(() => {});
        throw err;
      }
      const { processID, secretKey } = client as unknown as {
        processID: number;
        secretKey: number;
      };

      let releasing = false;
      let running: Promise<void> | undefined;
      let statementDone = true;
      let released: Promise<void> | undefined;
      const session: DrillSession = {
        kind: request.kind,
        pid: processID,
        application: request.application,
        release: () => (released ??= release()),
      };

      const release = async (): Promise<void> => {
        releasing = true;
        // Ending the client mid-statement only drops the socket, and the backend would sleep on,
        // holding its slot. Cancel on the server first (a protocol CancelRequest needs no slot).
        for (let attempt = 0; running && !statementDone && attempt < CANCEL_ATTEMPTS; attempt++) {
          await sendCancel(client, processID, secretKey);
          await settled(running, CANCEL_RETRY_MS);
        }
        await settled(
          client.end().catch(() => {}),
          STEP_TIMEOUT_MS,
        );
      };

      client.once('end', () => {
        if (releasing) return;
        releasing = true;
        request.onExternal({
          session,
          what: 'ended',
          reason: lastError || 'the server closed the connection',
        });
      });

      try {
        if (request.kind === 'long') {
          // PostgreSQL 14+: should the drill die without releasing, the backend notices the
          // closed socket within a second instead of sleeping out its statement. Older servers
          // do not know the setting; the statement then runs at most longSeconds.
          await client
            .query("SET client_connection_check_interval = '1s'")
            .catch((err: PgErrorLike) => {
              if (err.code !== '42704') throw err;
            });
          statementDone = false;
          running = client.query(`SELECT pg_sleep(${Math.ceil(request.longSeconds)})`).then(
            () => {
              statementDone = true;
            },
            (err: PgErrorLike) => {
              statementDone = true;
              // Cancelled from outside (pg_cancel_backend, poolctl's cancel-long): still connected.
              if (err.code === '57014') {
                if (!releasing) {
                  request.onExternal({ session, what: 'statement-ended', reason: messageOf(err) });
                }
              } else {
                // Terminated mid-statement: the server's reason, before pg's "terminated unexpectedly".
                lastError ||= messageOf(err);
              }
            },
          );
        } else {
          await client.query(SETUP_SQL[request.kind]);
        }
      } catch (err) {
        releasing = true;
        await client.end().catch(() => {});
        throw err;
      }
      return session;
    },

    isOutOfSlots(err: unknown): boolean {
      const { code, message = '' } = (err ?? {}) as PgErrorLike;
      return (
        code === '53300' ||
        /^(sorry, too many clients|remaining connection slots are reserved)/.test(message)
      );
    },

    connectError: (err: unknown) => connectError(err, spec, label),
    messageOf,
  };
}

function messageOf(err: unknown): string {
  return (err as PgErrorLike)?.message ?? String(err);
}

/** Sends a protocol CancelRequest for one backend, on a connection of its own; errors ignored. */
function sendCancel(client: pg.Client, processID: number, secretKey: number): Promise<void> {
  const socketTarget = client.host.startsWith('/')
    ? { path: `${client.host}/.s.PGSQL.${client.port}` }
    : { host: client.host, port: client.port };
  return settled(
    new Promise<void>((resolve) => {
      const socket = net.connect(socketTarget, () => {
        const packet = Buffer.alloc(16);
        packet.writeInt32BE(16, 0);
        packet.writeInt32BE(80877102, 4); // the CancelRequest code
        packet.writeInt32BE(processID, 8);
        packet.writeInt32BE(secretKey, 12);
        socket.end(packet);
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    }),
    STEP_TIMEOUT_MS,
  );
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
