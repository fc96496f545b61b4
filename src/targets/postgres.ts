import pg from 'pg';
import { TargetError } from '../errors.js';
import { targetLabel } from './resolve.js';
import {
  candidatesSql,
  classify,
  LOOKUP_SQL,
  signalParams,
  signalSql,
  stillThereSql,
} from './postgres-kill.js';
import { toSession } from './session-row.js';
import { clientTimeoutMs, noAnswerError, statementTimeoutError } from './stall.js';
import { certificateProblem } from './tls-trust.js';
import type { DatabaseTarget, DatabaseTargetSpec, Row, ServerInfo } from './types.js';

// count(*) is int8 and round() is numeric: both arrive as strings unless parsed. Connection counts
// and percentages fit a double comfortably.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

const SERVER_INFO_SQL = `SELECT pg_backend_pid() AS pid,
  current_setting('server_version') AS version,
  current_setting('server_version_num')::int AS version_num,
  current_user AS "user"`;

/** Opens the one connection poolctl uses on a PostgreSQL server. */
export async function connectPostgres(spec: DatabaseTargetSpec): Promise<DatabaseTarget> {
  const label = targetLabel(spec);
  const clientWith = (ssl: pg.ClientConfig['ssl']) =>
    new pg.Client({
      host: spec.host,
      port: spec.port,
      user: spec.user,
      // pg's own ~/.pgpass lookup is deprecated; a password function is its replacement.
      password: spec.password ?? (() => passwordFromPgpass(spec)),
      database: spec.database,
      application_name: 'poolctl',
      // TLS as resolve.ts read it, libpq's way (sslmode, sslrootcert, PGSSLMODE …).
      ssl,
      connectionTimeoutMillis: spec.connectTimeoutMs,
      statement_timeout: spec.sessionDefaults ? undefined : spec.statementTimeoutMs,
      // The server's statement_timeout cannot end a wait for a server that stopped answering:
      // pg's own timer does (queryError then destroys the connection).
      query_timeout: clientTimeoutMs(spec),
      lock_timeout: Math.min(spec.statementTimeoutMs, 5000),
      // pg_stat_activity is a function scan the planner guesses at one row after filtering, so
      // joins against it become nested loops: 1,000 × 1,000 comparisons, 70–100 ms per candidate
      // or kill statement here, 6 ms as hash joins. poolctl's own queries are all of that kind.
      // The penalty that steers the planner away from nested loops also lifts plans over
      // jit_above_cost, and JIT-compiling the kill statement took 325 ms: no JIT for poolctl.
      options: '-c enable_nestloop=off -c jit=off',
      types,
    });
  let client = clientWith(spec.tls);
  // A server that drops us later (terminated, restarted) must not crash the process.
  client.on('error', () => {});
  try {
    try {
      await client.connect();
    } catch (err) {
      // sslmode=prefer/allow against a server without TLS: plain, as libpq would.
      if (!spec.tlsFallbackToPlain || !/does not support SSL/i.test(messageOf(err))) throw err;
      await client.end().catch(() => {});
      client = clientWith(false);
      client.on('error', () => {});
      await client.connect();
    }
  } catch (err) {
    await client.end().catch(() => {});
    throw connectError(err, spec, label);
  }
  let info: ServerInfo;
  try {
    const { rows } = await client.query(SERVER_INFO_SQL);
    const row = rows[0] as {
      pid: number;
      version: string;
      version_num: number;
      user: string;
    };
    info = {
      engine: 'postgres',
      product: 'PostgreSQL',
      version: row.version,
      versionNum: row.version_num,
      ownSessionId: row.pid,
      user: row.user,
    };
  } catch (err) {
    if (isClientTimeout(err)) {
      destroy(client);
      throw noAnswerError(label, spec);
    }
    await close(client);
    throw new TargetError(`${label}: connected, but the first query failed: ${messageOf(err)}`);
  }
  // Inside readTogether: whether its transaction is open (it opens before the first statement
  // and again after a failed one, which ended it).
  let together: { open: boolean } | undefined;
  // A kill inside readTogether would re-check and poll against the transaction's old copy of
  // pg_stat_activity, and wait for victims that are long gone: a bug, not a run to go on with.
  const notTogether = (what: string) => {
    if (together) throw new Error(`internal: ${what}() called inside readTogether()`);
  };
  const run = async (sql: string, params: unknown[]): Promise<Row[]> => {
    const shared = together;
    try {
      if (shared && !shared.open) {
        await client.query('BEGIN');
        shared.open = true;
      }
      const result = await client.query(sql, params);
      return result.rows as Row[];
    } catch (err) {
      // A statement the server never answered may still be running there, and its reply may
      // arrive later: this connection is never used again.
      if (isClientTimeout(err)) destroy(client);
      else if (shared?.open) {
        // The error aborted the transaction: the statements after this one need a new one.
        shared.open = false;
        await client.query('ROLLBACK').catch(() => {});
      }
      throw queryError(err, label, spec);
    }
  };
  return {
    engine: 'postgres',
    label,
    info,
    query: run,
    // pg_stat_activity is a copy of every backend's status, taken at its first use in a
    // transaction and kept until the transaction ends (PostgreSQL's "Statistics Functions"
    // docs). With autocommit every step copied it again: at 1,000 sessions that was about a
    // quarter of the server's time for a diagnose (bench/README.md). One transaction per phase
    // copies it once, and every step of the phase counts the same sessions. No prompt waits
    // inside it (phase.ts), and no kill runs inside it: its polls would see that old copy.
    async readTogether(read) {
      if (together) return read();
      const shared = (together = { open: false });
      let result: Awaited<ReturnType<typeof read>>;
      try {
        result = await read();
      } catch (err) {
        together = undefined;
        // Not awaited: after Ctrl-C a statement may still be running, and the ROLLBACK would
        // wait behind it. pg sends it in order, before anything else this connection runs.
        if (shared.open) client.query('ROLLBACK').catch(() => {});
        throw err;
      }
      together = undefined;
      if (shared.open) await run('COMMIT', []);
      return result;
    },
    async change(sql, params) {
      await run(sql, params);
    },
    async candidates(request) {
      notTogether('candidates');
      const rows = await run(candidatesSql(request.sql), request.params);
      return rows.map(toSession);
    },
    async signal(request) {
      notTogether('signal');
      const killed = await run(
        signalSql(request.sql, request.params.length, request.mode),
        signalParams(request),
      );
      const handled = new Set(killed.map((r) => Number(r.pid)));
      const others = request.sessions.filter((s) => !handled.has(s.pid)).map((s) => s.pid);
      const lookup = others.length > 0 ? await run(LOOKUP_SQL, [others]) : [];
      return classify(request, killed, lookup);
    },
    async stillThere(sessions, mode) {
      notTogether('stillThere');
      if (sessions.length === 0) return new Set<number>();
      const rows = await run(stillThereSql(mode), [
        sessions.map((s) => s.pid),
        sessions.map((s) => s.sessionToken),
        sessions.map((s) => s.queryToken),
      ]);
      return new Set(rows.map((r) => Number(r.pid)));
    },
    async close() {
      await close(client);
    },
  };
}

/** pg's query_timeout error (its message is all that marks it). */
function isClientTimeout(err: unknown): boolean {
  return (err as Error)?.message === 'Query read timeout';
}

function destroy(client: pg.Client): void {
  (
    client as unknown as { connection?: { stream?: { destroy(): void } } }
  ).connection?.stream?.destroy();
}

/** Ends the session politely, but never waits on a server that stopped answering for more than a second. */
async function close(client: pg.Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 1000);
    timer.unref();
  });
  await Promise.race([client.end().catch(() => {}), gaveUp]);
  clearTimeout(timer);
  destroy(client);
}

/** The password libpq would find: PGPASSFILE or ~/.pgpass, matched on host, port, db and user. */
export async function passwordFromPgpass(spec: DatabaseTargetSpec): Promise<string> {
  const { default: pgpass } = await import('pgpass');
  return new Promise((resolve) => {
    pgpass(
      { host: spec.host, port: spec.port, database: spec.database, user: spec.user },
      (password?: string) => resolve(password ?? ''),
    );
  });
}

interface PgLikeError {
  code?: string;
  message?: string;
}

function messageOf(err: unknown): string {
  return (err as PgLikeError)?.message ?? String(err);
}

/** Turns a failed connect into one line naming the target, the reason and the way forward. */
export function connectError(err: unknown, spec: DatabaseTargetSpec, label: string): TargetError {
  const { code, message = '' } = (err ?? {}) as PgLikeError;
  const where = `${spec.host}:${spec.port}`;
  if (
    code === '53300' ||
    /^(sorry, too many clients|remaining connection slots are reserved)/.test(message)
  ) {
    return outOfSlotsError(message, spec, label);
  }
  if (code === '28P01') {
    return new TargetError(
      `${label}: password authentication failed for user "${spec.user}" (from ${spec.from}): ` +
        'check the password in the URL, PGPASSWORD or ~/.pgpass',
    );
  }
  if (code === '28000')
    return new TargetError(`${label}: the server refused user "${spec.user}": ${message}`);
  if (code === '3D000') {
    return new TargetError(
      `${label}: database "${spec.database}" does not exist: name another in the URL`,
    );
  }
  const certificate = certificateProblem(err, 'sslrootcert');
  if (certificate) return new TargetError(`${label}: ${certificate}`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new TargetError(
      `${label}: cannot resolve host "${spec.host}": check the host name in ${spec.from}`,
    );
  }
  if (code === 'ECONNREFUSED') {
    return new TargetError(
      `${label}: connection refused at ${where}: is PostgreSQL running and listening on that address and port?`,
    );
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new TargetError(`${label}: no route to ${where}: check the host and the network`);
  }
  if (/timeout/i.test(message)) {
    return new TargetError(
      `${label}: no answer from ${where} within ${spec.connectTimeoutMs / 1000}s ` +
        '(black-holed port, firewall or a hung server); raise --connect-timeout if it is only slow',
    );
  }
  if (code === 'ECONNRESET' || /Connection terminated/i.test(message)) {
    return new TargetError(
      `${label}: the server closed the connection during start-up: ${message}`,
    );
  }
  return new TargetError(`${label}: cannot connect: ${message || code || 'unknown error'}`);
}

/**
 * SQLSTATE 53300, told by its text's prefix (the ending differs by version and service).
 * "remaining connection slots are reserved …": the ordinary slots are full and this role may not
 * use the reserved ones: a superuser (or a pg_use_reserved_connections role, PostgreSQL 16+) may.
 * "sorry, too many clients already": every slot is taken, the superusers' reserved ones too, so
 * naming a superuser would send the operator in a circle: what is left is named instead.
 */
function outOfSlotsError(message: string, spec: DatabaseTargetSpec, label: string): TargetError {
  const where = `${spec.host}:${spec.port}`;
  const quoted = message ? ` ("${message}")` : '';
  if (/^remaining connection slots are reserved/.test(message)) {
    const reservedRole = /pg_use_reserved_connections/.test(message)
      ? 'a superuser or a role granted pg_use_reserved_connections'
      : 'a superuser (superuser_reserved_connections), or on PostgreSQL 16+ a role granted pg_use_reserved_connections';
    return new TargetError(
      `${label}: the server is out of ordinary connection slots${quoted}. ` +
        `Get in through a reserved slot as ${reservedRole}, e.g. ` +
        `--pg postgres://postgres@${where}/${spec.database}; or go through PgBouncer's admin console.`,
    );
  }
  return new TargetError(
    `${label}: every connection slot is taken, the superusers' reserved ones too${quoted}: ` +
      'another account will not get in either. Wait a moment and retry (a slot frees as soon as ' +
      "any client disconnects); use PgBouncer's admin console (PAUSE, KILL) if the clients come " +
      'through PgBouncer; end sessions from a psql session that is already open ' +
      '(pg_terminate_backend); or, as the last resort, restart the server.',
  );
}

function queryError(err: unknown, label: string, spec: DatabaseTargetSpec): Error {
  const { code, message = String(err) } = (err ?? {}) as PgLikeError;
  if (isClientTimeout(err)) return noAnswerError(label, spec);
  if (code === '57014') return statementTimeoutError(label, spec);
  if (code === '57P01' || /Connection terminated|not queryable/i.test(message)) {
    return new TargetError(
      `${label}: the server closed poolctl's connection (${message}); what ran is in the transcript: run the command again`,
    );
  }
  return new Error(message);
}
