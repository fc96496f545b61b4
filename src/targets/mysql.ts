import mysql from 'mysql2/promise';
import { TargetError } from '../errors.js';
import {
  byActivity,
  candidatesSql,
  classify,
  killInBatches,
  killOneByOne,
  mayUsePerformanceSchemaProcesslist,
  PERFORMANCE_SCHEMA_PROCESSLIST,
  PROCESSLIST,
  readingProcesslistFrom,
  readingProgramNamesFrom,
  READS_GRANTS_SQL,
  statementIdSql,
  type Readable,
  type Roles,
  recheckParams,
  recheckSql,
  stillPresent,
  stillThereSql,
  victimSql,
  type BatchOutcome,
  type BatchRunner,
} from './mysql-kill.js';
import { targetLabel } from './resolve.js';
import { toSession } from './session-row.js';
import { clientTimeoutMs, noAnswerError, statementTimeoutError } from './stall.js';
import { certificateProblem } from './tls-trust.js';
import type { DatabaseTarget, DatabaseTargetSpec, Row, ServerInfo } from './types.js';

// One round trip for what poolctl needs to know about the server and itself. Whether other
// accounts' grants are readable is the kill's own test (mysql-kill.ts READS_GRANTS_SQL): it
// decides here which fix the spared sessions are told.
const SERVER_INFO_SQL = `SELECT CONNECTION_ID() AS id,
  VERSION() AS version,
  SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AS user,
  @@performance_schema AS performance_schema,
  ${READS_GRANTS_SQL} AS reads_grants,
  CURRENT_USER() AS account`;

/** Opens the one connection poolctl uses on a MySQL or MariaDB server. */
export async function connectMysql(spec: DatabaseTargetSpec): Promise<DatabaseTarget> {
  const label = targetLabel(spec);
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({
      // A host that is a path is the server's Unix socket (resolve.ts: ?socket=, MYSQL_UNIX_PORT).
      ...(spec.host.startsWith('/')
        ? { socketPath: spec.host }
        : { host: spec.host, port: spec.port }),
      user: spec.user,
      password: spec.password,
      database: spec.database || undefined,
      connectTimeout: spec.connectTimeoutMs,
      ssl: mysqlSsl(spec),
      // Where the server records it (performance_schema.session_connect_attrs), so that poolctl's
      // own connection is recognisable to other tools; poolctl itself excludes CONNECTION_ID().
      connectAttributes: { program_name: 'poolctl' },
      // DECIMAL (SUM, ROUND, division) as numbers like the counts; BIGINT counts and ids are
      // numbers already (supportBigNumbers stays off: connection counts fit a double).
      decimalNumbers: true,
      // Timestamps are computed into seconds in SQL; any other date stays the server's text.
      dateStrings: true,
      // For the KILL batch: a thousand KILLs in one round trip instead of a thousand (≈ 60–100 ms
      // against 110–240 ms for 1,000 here, bench/README.md). Nothing else sends more than one
      // statement: parameters are always bound (a prepared statement is one statement whatever
      // it contains) and the only text poolctl writes into SQL is integers (mysql-kill.ts).
      multipleStatements: true,
    });
  } catch (err) {
    throw connectError(err, spec, label);
  }
  // A server that drops us later (KILL, restart) must not crash the process.
  conn.on('error', () => {});
  destroyWhenStalled(conn, clientTimeoutMs(spec));

  let info: ServerInfo;
  let account = '';
  let performanceSchema = false;
  let readsGrants = false;
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(SERVER_INFO_SQL);
    const row = rows[0] as {
      id: number;
      version: string;
      user: string;
      performance_schema: number;
      reads_grants: number;
      account: string;
    };
    const mariadb = /mariadb/i.test(row.version);
    // MariaDB limits a statement in seconds (any statement), MySQL in milliseconds (SELECT only).
    const limit = mariadb
      ? `max_statement_time = ${spec.statementTimeoutMs / 1000}`
      : `max_execution_time = ${Math.round(spec.statementTimeoutMs)}`;
    const lockWait = Math.max(1, Math.round(Math.min(spec.statementTimeoutMs, 5000) / 1000));
    await conn.query(`SET SESSION ${limit}, lock_wait_timeout = ${lockWait}`);
    info = {
      engine: 'mysql',
      product: mariadb ? 'MariaDB' : 'MySQL',
      version: /^\d+(\.\d+)*/.exec(row.version)?.[0] ?? row.version,
      versionNum: versionNumber(row.version),
      ownSessionId: Number(row.id),
      user: row.user,
    };
    account = grantee(row.account);
    performanceSchema = Boolean(row.performance_schema);
    readsGrants = Boolean(row.reads_grants);
  } catch (err) {
    conn.destroy();
    if (isStalled(err)) throw noAnswerError(label, spec);
    throw new TargetError(`${label}: connected, but the first query failed: ${messageOf(err)}`);
  }

  // A look that the server refuses (no grant, no such table) tells what poolctl may read; any
  // other failure (the stall watchdog's no answer, a lost connection) ends the connect.
  const probe = async (sql: string): Promise<mysql.RowDataPacket[] | undefined> => {
    try {
      return (await conn.query<mysql.RowDataPacket[]>(sql))[0];
    } catch (err) {
      if (isUnreadable(err)) return undefined;
      throw queryError(err, label, spec);
    }
  };
  let processlist: string;
  let readable: Readable;
  let programNamesUnreadable: string | undefined;
  try {
    processlist = await processlistOf(probe, info);
    ({ readable, programNamesUnreadable } = await readableOf(
      probe,
      info,
      performanceSchema,
      account,
    ));
  } catch (err) {
    conn.destroy();
    throw err;
  }
  // Where a session's superuser status cannot be read: the reason the selection spares it with.
  const superuserUnknown =
    (readsGrants
      ? "superuser status unknown: poolctl's account cannot read the roles granted to accounts "
      : "superuser status unknown: poolctl's account cannot read other accounts' grants ") +
    `(GRANT SELECT ON mysql.* TO ${account} to see them; --include-superusers to include)`;
  const run = async (text: string, params: unknown[]): Promise<Row[]> => {
    const sql = readingProgramNamesFrom(
      readingProcesslistFrom(text, processlist),
      readable.programNames,
    );
    try {
      // With parameters, a server-side prepared statement: the server parses the SQL, so a `?` in
      // a comment or a string is never taken for a placeholder. Without, one round trip.
      const [rows] = params.length
        ? await conn.execute(sql, params as (string | number)[])
        : await conn.query(sql);
      return firstResultSet(rows);
    } catch (err) {
      throw queryError(err, label, spec);
    }
  };
  const runBatch = multiStatementRunner(conn);
  // What each cancel victim was running at the kill (QUERY_ID), for stillThere.
  let cancelled = new Map<number, number>();
  return {
    engine: 'mysql',
    label,
    info,
    query: run,
    async change(sql, params) {
      await run(sql, params);
    },
    async candidates(request) {
      const rows = await run(candidatesSql(request.sql, readable), request.params);
      return rows.map((row) => ({
        ...toSession(row),
        ...(programNamesUnreadable && { applicationUnknown: programNamesUnreadable }),
        ...(row.superuser === null && { superuserUnknown }),
      }));
    },
    async signal(request) {
      if (request.sessions.length === 0) return { signalled: [], gone: [], spared: [], failed: [] };
      const rows = await run(
        recheckSql(
          request.sql,
          request.sessions.map((s) => s.pid),
          request.protection,
          readable,
        ),
        recheckParams(request, readable),
      );
      const { kill, result, queryIds } = classify(request, rows);
      if (request.mode === 'cancel') cancelled = new Map([...cancelled, ...queryIds]);
      if (kill.length === 0) return result;
      // Idle victims: one multi-statement batch. Victims running a statement: one KILL at a time,
      // each after the previous victim's statement has ended (see killOneByOne: on MariaDB a batch
      // of KILLs for SLEEP()ing statements can take seconds per victim).
      const { idle, running } = byActivity(kill, rows);
      // Newest connection first: MariaDB 10.11 ends 1,000 sleeping victims sooner that way
      // (≈ 62 ms against ≈ 74 ms, medians of 10; its KILL looks the id up in its thread list).
      idle.sort((a, b) => b - a);
      try {
        const inBatches = await killInBatches(runBatch, idle, request.mode);
        const oneByOne = await killOneByOne(
          {
            run: runBatch,
            ...(request.signal && { signal: request.signal }),
            // Raw: an error here is caught below and told once, like the KILLs'.
            probe: async (id) =>
              firstResultSet(
                (
                  await conn.query(
                    readingProcesslistFrom(victimSql(id, readable.statementIds), processlist),
                  )
                )[0],
              )[0],
          },
          running,
          request.mode,
        );
        for (const killed of [inBatches, oneByOne]) {
          result.signalled.push(...killed.killed);
          result.gone.push(...killed.gone);
          result.failed.push(...killed.failed);
        }
        result.spared.push(...oneByOne.spared);
        if (oneByOne.spared.length > 0) result.stoppedEarly = true;
      } catch (err) {
        throw queryError(err, label, spec);
      }
      return result;
    },
    async stillThere(sessions, mode) {
      if (sessions.length === 0) return new Set<number>();
      const rows = await run(
        stillThereSql(
          sessions.map((s) => s.pid),
          mode === 'cancel' ? readable.statementIds : 'none',
        ),
        [],
      );
      return stillPresent(sessions, rows, mode, cancelled);
    },
    async close() {
      await conn.end().catch(() => conn.destroy());
      // COM_QUIT is written; the server closes the socket when its thread gets to it, 10–15 ms
      // later while it is still reaping a thousand killed connections. Nothing is left to read:
      // let the process exit without waiting for that.
      (
        conn as unknown as { connection?: { stream?: { unref?(): void } } }
      ).connection?.stream?.unref?.();
    },
  };
}

const STALLED = 'POOLCTL_NO_ANSWER';

/**
 * The server's max_statement_time cannot end a wait for a server that stopped answering, and
 * mysql2's per-query `timeout` covers neither the prepare of `execute` nor the multi-statement
 * KILL batches nor COM_QUIT. So one watchdog on the socket: when a command is in flight and
 * nothing has arrived for `ms`, the connection is destroyed (never reused: the statement may
 * still run there and answer later), and every pending command fails with STALLED.
 */
function destroyWhenStalled(conn: mysql.Connection, ms: number): void {
  const core = (
    conn as unknown as {
      connection?: { _command?: unknown; stream?: import('node:net').Socket };
    }
  ).connection;
  const stream = core?.stream;
  if (!core || typeof stream?.setTimeout !== 'function') return;
  stream.setTimeout(ms, () => {
    // Idle between commands (the operator reading a table): nothing is owed.
    if (!core._command) return;
    stream.destroy(Object.assign(new Error('no answer from the server'), { code: STALLED }));
  });
}

function isStalled(err: unknown): boolean {
  return (err as MysqlLikeError)?.code === STALLED;
}

/**
 * Where this server's process list is read: performance_schema.processlist where MySQL has it and
 * it shows poolctl's own connection (performance_schema on, SELECT granted), else
 * INFORMATION_SCHEMA.PROCESSLIST. One small statement, on MySQL 8.0.22+ only.
 */
async function processlistOf(probe: Probe, info: ServerInfo): Promise<string> {
  if (!mayUsePerformanceSchemaProcesslist(info)) return PROCESSLIST;
  // Unreadable (no SELECT on it): the information schema's table shows the same.
  const rows = await probe(
    `SELECT COUNT(*) AS n FROM ${PERFORMANCE_SCHEMA_PROCESSLIST} WHERE ID = CONNECTION_ID()`,
  );
  return Number(rows?.[0]?.n) === 1 ? PERFORMANCE_SCHEMA_PROCESSLIST : PROCESSLIST;
}

/** One look at the server: its rows, or undefined where the server refuses it (isUnreadable). */
type Probe = (sql: string) => Promise<mysql.RowDataPacket[] | undefined>;

/**
 * The errors that mean "poolctl may not read this" rather than "something went wrong": table,
 * column, database or privilege access denied (1142, 1143, 1044, 1227), and no such table (1146:
 * a server older than the table, e.g. MySQL before roles).
 */
function isUnreadable(err: unknown): boolean {
  return [1142, 1143, 1044, 1227, 1146].includes((err as MysqlLikeError)?.errno ?? -1);
}

/**
 * Roles on this server (see Roles) and whether the grants of every account's roles are readable:
 * one small look at the mysql schema's role tables, which takes SELECT on it.
 */
async function rolesOf(probe: Probe, info: ServerInfo): Promise<Roles> {
  if (info.product === 'MariaDB') {
    const rows = await probe('SELECT 1 FROM mysql.roles_mapping, mysql.global_priv LIMIT 0');
    return { own: 'listed', membership: rows ? 'roles_mapping' : 'unreadable' };
  }
  if (info.versionNum < 80000) return { own: 'none', membership: 'unreadable' };
  const rows = await probe('SELECT 1 FROM mysql.role_edges LIMIT 0');
  return {
    // information_schema.APPLICABLE_ROLES exists from MySQL 8.0.19.
    own: info.versionNum >= 80019 ? 'listed' : 'unlisted',
    membership: rows ? 'role_edges' : 'unreadable',
  };
}

/**
 * What this server lets poolctl read beyond the process list (see Readable) and, where program
 * names cannot be read, why and the fix. Costs nothing on a stock MariaDB (performance_schema
 * OFF, known from the first query); else one small statement that reads poolctl's own attribute.
 */
async function readableOf(
  probe: Probe,
  info: ServerInfo,
  performanceSchema: boolean,
  account: string,
): Promise<{ readable: Readable; programNamesUnreadable?: string }> {
  const mariadb = info.product === 'MariaDB';
  let programNamesUnreadable: string | undefined;
  let statementEvents = false;
  if (!performanceSchema) {
    programNamesUnreadable =
      `application unknown: performance_schema is OFF${mariadb ? " (MariaDB's default)" : ''}, ` +
      'so no program names are recorded; set performance_schema=ON in the server configuration and restart';
  } else {
    const rows = await probe(
      `SELECT ATTR_VALUE AS program_name FROM performance_schema.session_connect_attrs
        WHERE PROCESSLIST_ID = CONNECTION_ID() AND ATTR_NAME = 'program_name'`,
    );
    if (!rows) {
      programNamesUnreadable =
        'application unknown: poolctl may not read program names ' +
        `(GRANT SELECT ON performance_schema.session_connect_attrs TO ${account})`;
    } else if (rows.length === 0) {
      programNamesUnreadable =
        'application unknown: the server records no connection attributes; raise ' +
        'performance_schema_session_connect_attrs_size in the server configuration and restart';
    }
    if (!mariadb) statementEvents = await readsStatementEvents(probe);
  }
  return {
    readable: {
      programNames: programNamesUnreadable === undefined,
      statementIds: mariadb ? 'query-id' : statementEvents ? 'statement-events' : 'none',
      roles: await rolesOf(probe, info),
    },
    ...(programNamesUnreadable && { programNamesUnreadable }),
  };
}

/** MySQL 8: whether the statement events show poolctl's own statement (on, and SELECT granted). */
async function readsStatementEvents(probe: Probe): Promise<boolean> {
  const rows = await probe(
    `SELECT ${statementIdSql('p', 'statement-events')} AS query_id
       FROM ${PROCESSLIST} p WHERE p.ID = CONNECTION_ID()`,
  );
  return rows?.[0]?.query_id !== null && rows?.[0]?.query_id !== undefined;
}

/** CURRENT_USER()'s user@host as a GRANT names the account: 'oncall'@'%'. */
function grantee(account: string): string {
  const at = account.lastIndexOf('@');
  const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return `${quote(account.slice(0, at))}@${quote(account.slice(at + 1))}`;
}

/** mysql2's TLS options from the URL's ssl-mode and ssl-ca (resolve.ts); undefined: plain. */
export function mysqlSsl(spec: DatabaseTargetSpec): mysql.SslOptions | undefined {
  if (!spec.tls) return undefined;
  return (spec.tls === true ? {} : spec.tls) as mysql.SslOptions;
}

/** 10.11.19-MariaDB-0+deb12u1 → 101119; 8.0.36 → 80036. */
export function versionNumber(version: string): number {
  const [major = 0, minor = 0, patch = 0] = (/^(\d+)\.(\d+)\.(\d+)/.exec(version) ?? [])
    .slice(1)
    .map(Number);
  return major * 10000 + minor * 100 + patch;
}

interface MysqlLikeError {
  code?: string;
  errno?: number;
  message?: string;
  fatal?: boolean;
}

/**
 * With multi-statement support on, a text query whose SQL ends in a comment after its semicolon
 * comes back as two results (the rows, then an empty one): the rows are the first.
 */
function firstResultSet(rows: unknown): Row[] {
  if (!Array.isArray(rows)) return [];
  return (Array.isArray(rows[0]) ? rows[0] : rows) as Row[];
}

interface CoreQuery {
  on(event: 'result', listener: () => void): CoreQuery;
}
interface CoreConnection {
  query(sql: string, callback: (err: unknown) => void): CoreQuery;
}

/**
 * Runs a multi-statement batch and says how far it got. The promise API reports only the error of
 * a batch that failed midway, not which statement failed; the callback API underneath (the promise
 * connection keeps it as `.connection`) emits one `result` per statement that completed.
 */
export function multiStatementRunner(conn: mysql.Connection): BatchRunner {
  const core = (conn as unknown as { connection?: CoreConnection }).connection;
  if (typeof core?.query !== 'function') {
    // Not the mysql2 this was written against: one statement per round trip, slower but exact.
    return async (sql) => {
      let completed = 0;
      for (const statement of sql.split(';')) {
        try {
          await conn.query(statement);
        } catch (error) {
          return { completed, error: error as BatchOutcome['error'] };
        }
        completed++;
      }
      return { completed };
    };
  }
  return (sql) =>
    new Promise((resolve) => {
      let completed = 0;
      core
        .query(sql, (err) =>
          resolve(err ? { completed, error: err as BatchOutcome['error'] } : { completed }),
        )
        .on('result', () => completed++);
    });
}

function messageOf(err: unknown): string {
  return (err as MysqlLikeError)?.message ?? String(err);
}

/** Turns a failed connect into one line naming the target, the reason and the way forward. */
export function connectError(err: unknown, spec: DatabaseTargetSpec, label: string): TargetError {
  const { code, errno, message = '' } = (err ?? {}) as MysqlLikeError;
  const where = `${spec.host}:${spec.port}`;
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  if (errno === 1040 || code === 'ER_CON_COUNT_ERROR') {
    return new TargetError(
      `${label}: the server is out of connections (error 1040 "Too many connections"). ` +
        'Get in through the one extra connection MySQL and MariaDB keep beyond max_connections ' +
        'for an account with SUPER or CONNECTION ADMIN (CONNECTION_ADMIN on MySQL 8), e.g. ' +
        `--mysql mysql://root@${host}:${spec.port}/ — if that one is taken too, use MySQL 8's ` +
        "admin interface (admin_address, port 33062 by default) or MariaDB's extra_port, " +
        'where the server has them configured.',
    );
  }
  if (errno === 1045 || code === 'ER_ACCESS_DENIED_ERROR') {
    return new TargetError(
      `${label}: access denied for user "${spec.user}" (from ${spec.from}): wrong password, ` +
        'or the account may not connect from this host; check the password in the URL or MYSQL_PWD',
    );
  }
  if (errno === 1049 || code === 'ER_BAD_DB_ERROR') {
    return new TargetError(
      `${label}: database "${spec.database}" does not exist: name another in the URL, or none`,
    );
  }
  if (errno === 1044 || code === 'ER_DBACCESS_DENIED_ERROR') {
    return new TargetError(
      `${label}: user "${spec.user}" may not use database "${spec.database}": name another in the URL, or none`,
    );
  }
  if (errno === 1203 || code === 'ER_TOO_MANY_USER_CONNECTIONS') {
    return new TargetError(
      `${label}: user "${spec.user}" is at its own limit (max_user_connections), not the server's: ` +
        `connect as another account, e.g. --mysql mysql://root@${host}:${spec.port}/`,
    );
  }
  if (errno === 1129 || code === 'ER_HOST_IS_BLOCKED') {
    return new TargetError(
      `${label}: the server blocks this host after too many failed connects (max_connect_errors): ` +
        'run FLUSH HOSTS (mariadb-admin flush-hosts / TRUNCATE performance_schema.host_cache) from another host',
    );
  }
  if (errno === 1130 || code === 'ER_HOST_NOT_PRIVILEGED') {
    return new TargetError(
      `${label}: no account "${spec.user}" may connect from this host: ${message}`,
    );
  }
  const certificate = certificateProblem(err, 'ssl-ca');
  if (certificate) return new TargetError(`${label}: ${certificate}`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new TargetError(
      `${label}: cannot resolve host "${spec.host}": check the host name in ${spec.from}`,
    );
  }
  if (spec.host.startsWith('/') && (code === 'ENOENT' || code === 'ECONNREFUSED')) {
    return new TargetError(
      `${label}: no server listens on the socket ${spec.host}: is MySQL/MariaDB running, and is that its socket (SELECT @@socket)?`,
    );
  }
  if (code === 'ECONNREFUSED') {
    return new TargetError(
      `${label}: connection refused at ${where}: is MySQL/MariaDB running and listening on that address and port?`,
    );
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new TargetError(`${label}: no route to ${where}: check the host and the network`);
  }
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(message)) {
    return new TargetError(
      `${label}: no answer from ${where} within ${spec.connectTimeoutMs / 1000}s ` +
        '(black-holed port, firewall or a hung server); raise --connect-timeout if it is only slow',
    );
  }
  if (code === 'ECONNRESET' || code === 'PROTOCOL_CONNECTION_LOST') {
    return new TargetError(
      `${label}: the server closed the connection during start-up: ${message || code}`,
    );
  }
  return new TargetError(`${label}: cannot connect: ${message || code || 'unknown error'}`);
}

function queryError(err: unknown, label: string, spec: DatabaseTargetSpec): Error {
  const { code, errno, message = String(err), fatal } = (err ?? {}) as MysqlLikeError;
  if (code === STALLED) return noAnswerError(label, spec);
  // MariaDB 1969 (max_statement_time exceeded), MySQL 3024 (max_execution_time exceeded).
  if (errno === 1969 || errno === 3024) return statementTimeoutError(label, spec);
  if (
    fatal ||
    code === 'PROTOCOL_CONNECTION_LOST' ||
    code === 'ECONNRESET' ||
    errno === 1927 || // MariaDB: connection was killed
    errno === 2013
  ) {
    return new TargetError(
      `${label}: the server closed poolctl's connection (${message}); what ran is in the transcript: run the command again`,
    );
  }
  return new Error(withGrantHint(errno, message));
}

/**
 * A statement refused for want of a table privilege (1142), with the GRANT that fixes it: the
 * message names the account and the table, e.g. the lock-waits step's `sys`.`innodb_lock_waits`.
 */
export function withGrantHint(errno: number | undefined, message: string): string {
  if (errno !== 1142) return message;
  const found =
    /command denied to user '([^']*)'@'([^']*)' for table [`'"]?(\w+)[`'"]?\.[`'"]?\w+/i.exec(
      message,
    );
  if (!found) return message;
  const [, user, host, schema] = found;
  return `${message}; GRANT SELECT ON \`${schema}\`.* TO '${user}'@'${host}' lets poolctl read it`;
}
