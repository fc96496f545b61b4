import type {
  KillMode,
  Protection,
  Row,
  ServerInfo,
  Session,
  SignalRequest,
  SignalResult,
} from './types.js';

/**
 * The kill for MySQL and MariaDB. Unlike PostgreSQL, no function can kill from inside a SELECT, so
 * it takes two steps on poolctl's one connection: one re-checking SELECT that decides, per shown
 * session, whether it may still be killed (and if not, why), then the KILL statements for exactly
 * the survivors, sent as one multi-statement batch. Only integers poolctl produced itself are ever
 * written into SQL text; names (protected users, programs) and the runbook's parameters are bound.
 *
 * The session token is `CONCAT(USER, '@', HOST)`: user@host:port over TCP, which tells a connection
 * apart from a later one that got the same id. Runbook candidate queries must produce it that way.
 */

/**
 * The process list as poolctl's SQL and the runbooks name it: the table MariaDB has, and every
 * MySQL. On MySQL 8.0.22+ the adapter may read it from PERFORMANCE_SCHEMA_PROCESSLIST instead
 * (readingProcesslistFrom).
 */
export const PROCESSLIST = 'information_schema.PROCESSLIST';
export const PERFORMANCE_SCHEMA_PROCESSLIST = 'performance_schema.processlist';

/**
 * Whether to try performance_schema.processlist. MySQL 8.0.22+ has the process list there and
 * deprecates INFORMATION_SCHEMA.PROCESSLIST, which holds a global mutex while it reads every
 * thread (on a server with thousands of connections, the very thing poolctl is called for).
 * MariaDB has only INFORMATION_SCHEMA.PROCESSLIST. Both have the columns poolctl reads (ID, USER,
 * HOST, DB, COMMAND, TIME, STATE, INFO). Only a try: with performance_schema off the table is
 * empty (a full server would read as idle), and it needs its own SELECT grant; the adapter uses it
 * only when it shows poolctl's own connection.
 */
export function mayUsePerformanceSchemaProcesslist(
  info: Pick<ServerInfo, 'product' | 'versionNum'>,
): boolean {
  return info.product === 'MySQL' && info.versionNum >= 80022;
}

/** `sql` with every INFORMATION_SCHEMA.PROCESSLIST (any case, quoted or not) read from `table`. */
export function readingProcesslistFrom(sql: string, table: string): string {
  if (table === PROCESSLIST) return sql;
  return sql.replace(/`?\binformation_schema`?\s*\.\s*`?processlist\b`?/gi, table);
}

/** Accounts with SUPER or CONNECTION ADMIN (MySQL 8: CONNECTION_ADMIN), by user name. */
const SUPERUSERS_SQL = `SELECT DISTINCT REPLACE(
    SUBSTRING(GRANTEE, 2, CHAR_LENGTH(GRANTEE) - LOCATE('@', REVERSE(GRANTEE)) - 2),
    '''''', '''') AS user
  FROM information_schema.USER_PRIVILEGES
  WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN', 'CONNECTION_ADMIN')`;

/**
 * The server's own threads, never touched: the event scheduler, replication (replica IO/SQL
 * threads and workers run as `system user`; a replica's binlog dump thread on the source runs as
 * the replication account), delayed-insert handlers, and connections still authenticating.
 */
function serverThread(user: string, command: string): string {
  return `(${user} IN ('system user', 'event_scheduler', 'unauthenticated user', 'DELAYED')
    OR ${command} IN ('Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker', 'Delayed insert')
    OR ${command} LIKE 'Binlog Dump%')`;
}

/** A runbook's candidate query as a derived table body: no trailing semicolon. */
function asSubquery(sql: string): string {
  return sql.trim().replace(/;\s*$/, '');
}

/**
 * A runbook's candidate query, wrapped: never poolctl's own connection nor a server thread, each
 * session marked with whether an account of its user name holds SUPER or CONNECTION ADMIN (the
 * protection rules spare those unless asked). Matching on the user name alone errs on the side of
 * protecting. The account reads only its own grants without access to the mysql schema; then
 * other superusers go unmarked here, and a KILL of theirs fails (error 1095) rather than succeeds.
 */
export function candidatesSql(candidateSql: string): string {
  return `SELECT c.*, su.user IS NOT NULL AS superuser
FROM (
${asSubquery(candidateSql)}
) c
LEFT JOIN (${SUPERUSERS_SQL}) su ON su.user = c.user
WHERE c.pid <> CONNECTION_ID()
  AND NOT ${serverThread('c.user', 'c.state')}
ORDER BY c.in_state_s DESC, c.pid`;
}

/** Connection ids are integers poolctl wrote itself; anything else must never reach SQL text. */
export function idList(ids: readonly number[]): string {
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0) throw new Error(`not a connection id: ${id}`);
  }
  return ids.join(', ');
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/**
 * The re-check, one statement: each shown id as the process list has it now, with the verdict of
 * the never-touch rules applied to the live row, and whether the candidate query (re-run here as
 * a derived table) still selects the same connection. `verdict = 'kill'` survives; every other
 * verdict names the reason it is spared. A shown id without a row is gone. The session token is
 * compared with the shown one by `classify`, which also reads why the rest were spared from the
 * same rows, so no second look-up is needed.
 *
 * `exactQueryIds` (MariaDB's QUERY_ID) returns the id of the statement running now, which a cancel
 * remembers to tell the cancelled statement from the next one.
 */
export function recheckSql(
  candidateSql: string,
  ids: readonly number[],
  protection: Protection,
  exactQueryIds: boolean,
): string {
  const users = protection.users.length
    ? `live.USER IN (${placeholders(protection.users.length)})`
    : 'FALSE';
  const apps = protection.applications.length
    ? `COALESCE(c.application, '') IN (${placeholders(protection.applications.length)})`
    : 'FALSE';
  const superusers = protection.includeSuperusers ? 'FALSE' : 'su.user IS NOT NULL';
  return `SELECT live.ID AS pid,
  CASE
    WHEN live.ID = CONNECTION_ID() THEN 'self'
    WHEN ${serverThread('live.USER', 'live.COMMAND')} THEN 'server'
    WHEN ${users} THEN 'protected-user'
    WHEN c.pid IS NOT NULL AND ${apps} THEN 'protected-application'
    WHEN ${superusers} THEN 'superuser'
    WHEN c.pid IS NULL THEN 'no-match'
    ELSE 'kill'
  END AS verdict,
  CONCAT(live.USER, '@', live.HOST) AS session_token,
  live.USER AS user,
  live.COMMAND AS command,
  CAST(UNIX_TIMESTAMP() - live.TIME AS SIGNED) AS started,
  ${exactQueryIds ? 'live.QUERY_ID' : 'NULL'} AS query_id
FROM ${PROCESSLIST} live
LEFT JOIN (
  SELECT * FROM (
${asSubquery(candidateSql)}
  ) candidates
  -- Never merged into this query: materialized once, with a key on pid. Merged, the process list
  -- inside would be joined to the one outside without an index (50 ms at 1,000 connections).
  LIMIT 18446744073709551615
) c ON c.pid = live.ID AND c.session_token = CONCAT(live.USER, '@', live.HOST)
LEFT JOIN (${SUPERUSERS_SQL}) su ON su.user = live.USER
WHERE live.ID IN (${idList(ids)})`;
}

/** Parameters in the order their placeholders appear in `recheckSql`'s text. */
export function recheckParams(request: SignalRequest): unknown[] {
  return [...request.protection.users, ...request.protection.applications, ...request.params];
}

/**
 * Statement identity for a cancel: the shown query_token is the statement's start in epoch seconds
 * derived from TIME (whole seconds), so two readings of one statement may differ by one.
 */
function sameStatement(shown: Session, row: Row): boolean {
  if (row.command === 'Sleep') return false;
  const then = Number(shown.queryToken);
  const now = Number(row.started);
  return Number.isFinite(then) && Number.isFinite(now) && Math.abs(now - then) <= 1;
}

export interface Recheck {
  /** The sessions to KILL now, in the order shown. */
  kill: Session[];
  result: SignalResult;
  /** For a cancel on MariaDB: the QUERY_ID each victim runs now, to tell when it has ended. */
  queryIds: Map<number, number>;
}

/** Reads the re-check's rows against the shown sessions: who is killed, who is spared and why. */
export function classify(request: SignalRequest, rows: Row[]): Recheck {
  const result: SignalResult = { signalled: [], gone: [], spared: [], failed: [] };
  const kill: Session[] = [];
  const queryIds = new Map<number, number>();
  const now = new Map(rows.map((r) => [Number(r.pid), r]));
  for (const shown of request.sessions) {
    const row = now.get(shown.pid);
    if (!row) {
      result.gone.push(shown.pid);
      continue;
    }
    const reason = sparedReason(shown, row, request.mode);
    if (reason) {
      result.spared.push({ pid: shown.pid, reason });
      continue;
    }
    kill.push(shown);
    if (request.mode === 'cancel' && row.query_id !== null && row.query_id !== undefined) {
      queryIds.set(shown.pid, Number(row.query_id));
    }
  }
  return { kill, result, queryIds };
}

function sparedReason(shown: Session, row: Row, mode: KillMode): string | undefined {
  const user = String(row.user ?? '');
  const command = String(row.command ?? 'unknown');
  switch (row.verdict) {
    case 'self':
      return "poolctl's own connection";
    case 'server':
      return `the server's own thread (${user}, ${command})`;
  }
  if (row.session_token !== shown.sessionToken) return 'a new connection took over the id';
  switch (row.verdict) {
    case 'protected-user':
      return `protected user "${user}"`;
    case 'protected-application':
      return `protected application "${shown.application}"`;
    case 'superuser':
      return `superuser "${user}" (--include-superusers to include)`;
    case 'no-match':
      return command !== shown.state
        ? `no longer matches: now ${command}`
        : 'no longer matches the selection';
    case 'kill':
      if (mode === 'cancel' && !sameStatement(shown, row)) {
        return command === 'Sleep'
          ? 'no longer matches: now Sleep'
          : 'no longer matches: now running another statement';
      }
      return undefined;
    default:
      return `no longer matches the selection (${String(row.verdict)})`;
  }
}

/** `KILL CONNECTION 12;KILL CONNECTION 13` — one statement per id, in one batch. */
export function killBatchSql(ids: readonly number[], mode: KillMode): string {
  const verb = mode === 'cancel' ? 'KILL QUERY' : 'KILL CONNECTION';
  idList(ids);
  return ids.map((id) => `${verb} ${id}`).join(';');
}

/** How a multi-statement batch ended: the statements that completed, then the error if any. */
export interface BatchOutcome {
  completed: number;
  error?: { errno?: number; code?: string; message?: string; fatal?: boolean };
}

export type BatchRunner = (sql: string) => Promise<BatchOutcome>;

/** KILL statements per batch: ~25 bytes each, far below any max_allowed_packet. */
export const KILL_BATCH = 1000;

/** MySQL/MariaDB error numbers a KILL of one victim can end with. */
const ER_NO_SUCH_THREAD = 1094;
const ER_KILL_DENIED = 1095;

export interface KillOutcome {
  killed: number[];
  gone: number[];
  failed: { pid: number; reason: string }[];
}

/**
 * Sends the KILLs in as few round trips as the protocol allows: one multi-statement batch. A batch
 * stops at its first error and the statements after it never run, so on an error the victim at
 * that position gets its outcome (1094, unknown thread: it disconnected since the re-check, gone;
 * 1095, not its owner: failed, with the reason) and the rest go again in the next batch. A
 * connection-level error (poolctl's own connection lost) is thrown: nothing more can be sent.
 */
export async function killInBatches(
  run: BatchRunner,
  ids: readonly number[],
  mode: KillMode,
): Promise<KillOutcome> {
  const outcome: KillOutcome = { killed: [], gone: [], failed: [] };
  let rest = [...ids];
  while (rest.length > 0) {
    const batch = rest.slice(0, KILL_BATCH);
    const { completed, error } = await run(killBatchSql(batch, mode));
    outcome.killed.push(...batch.slice(0, completed));
    if (!error) {
      rest = rest.slice(batch.length);
      continue;
    }
    const pid = batch[completed];
    if (error.fatal || pid === undefined) throw error;
    if (error.errno === ER_NO_SUCH_THREAD) outcome.gone.push(pid);
    else outcome.failed.push({ pid, reason: killFailure(error) });
    rest = rest.slice(completed + 1);
  }
  return outcome;
}

function killFailure(error: NonNullable<BatchOutcome['error']>): string {
  const said = `error ${error.errno ?? error.code}: ${error.message ?? 'unknown'}`;
  if (error.errno === ER_KILL_DENIED) {
    return `permission denied (${said}): killing another account's connections needs CONNECTION ADMIN (MySQL 8: CONNECTION_ADMIN) or SUPER`;
  }
  return `KILL failed (${said})`;
}

/**
 * The shown ids in the process list now, with what tells the same connection (and, for a cancel,
 * the same statement) from a new one. One small statement: it runs every few milliseconds.
 */
export function stillThereSql(ids: readonly number[], exactQueryIds: boolean): string {
  return `SELECT ID AS pid, CONCAT(USER, '@', HOST) AS session_token, COMMAND AS command,
  CAST(UNIX_TIMESTAMP() - TIME AS SIGNED) AS started${exactQueryIds ? ', QUERY_ID AS query_id' : ''}
FROM ${PROCESSLIST} WHERE ID IN (${idList(ids)})`;
}

/**
 * Which sessions are still there. Terminate: the same connection (id and session token), in
 * whatever state (a killed connection shows the command `Killed` until it has exited). Cancel: the
 * same connection still running the cancelled statement: the same QUERY_ID where the server has
 * one (MariaDB, exact) and that was read at the kill, else a statement that started within a second
 * of the shown start.
 */
export function stillPresent(
  sessions: readonly Session[],
  rows: Row[],
  mode: KillMode,
  queryIds: ReadonlyMap<number, number>,
): Set<number> {
  const byPid = new Map(rows.map((r) => [Number(r.pid), r]));
  const present = new Set<number>();
  for (const s of sessions) {
    const row = byPid.get(s.pid);
    if (!row || row.session_token !== s.sessionToken) continue;
    if (mode === 'terminate') {
      present.add(s.pid);
      continue;
    }
    const queryId = queryIds.get(s.pid);
    const running =
      queryId !== undefined && row.query_id !== undefined && row.query_id !== null
        ? row.command !== 'Sleep' && Number(row.query_id) === queryId
        : sameStatement(s, row);
    if (running) present.add(s.pid);
  }
  return present;
}

/**
 * The victims to KILL now, split by what the re-check saw them doing: idle ones (Command `Sleep`)
 * and those running a statement, with the statement's QUERY_ID where the server numbers them.
 */
export function byActivity(
  kill: readonly Session[],
  rows: Row[],
): { idle: number[]; running: { pid: number; queryId?: number }[] } {
  const now = new Map(rows.map((r) => [Number(r.pid), r]));
  const idle: number[] = [];
  const running: { pid: number; queryId?: number }[] = [];
  for (const { pid } of kill) {
    const row = now.get(pid);
    if (!row || row.command === 'Sleep') {
      idle.push(pid);
      continue;
    }
    const queryId =
      row.query_id === null || row.query_id === undefined ? undefined : Number(row.query_id);
    running.push(queryId === undefined ? { pid } : { pid, queryId });
  }
  return { idle, running };
}

/**
 * One connection as the process list has it now, to tell when its statement has ended. One tiny
 * statement that runs every few milliseconds while the KILLs go one at a time.
 */
export function victimSql(id: number, exactQueryIds: boolean): string {
  return `SELECT COMMAND AS command, INFO AS info${exactQueryIds ? ', QUERY_ID AS query_id' : ''}
FROM ${PROCESSLIST} WHERE ID = ${idList([id])}`;
}

/** Whether the statement a victim ran at the KILL is still running, from its row now. */
export function stillRunning(
  row: Row | undefined,
  queryId: number | undefined,
  mode: KillMode,
): boolean {
  if (!row) return false;
  if (row.command === 'Sleep' || row.info === null || row.info === undefined) return false;
  if (queryId !== undefined && row.query_id !== undefined && row.query_id !== null) {
    if (Number(row.query_id) !== queryId) return false;
  }
  // A killed connection shows `Killed` until it has exited: for a terminate, its statement is
  // still on its way out until then.
  return mode === 'terminate' || row.command !== 'Killed';
}

export interface SequentialKill {
  run: BatchRunner;
  /** The victim's process list row now, undefined once gone. */
  probe: (id: number) => Promise<Row | undefined>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** How long to wait for one victim's statement to end before the next KILL goes. */
export const VICTIM_WAIT_MS = 250;
/** Between looks at that victim. */
export const VICTIM_POLL_MS = 2;
/**
 * A KILL QUERY that reaches a connection before its statement has started is lost (the flag is
 * cleared when the statement begins): the statements still running after a pass go again.
 */
export const KILL_PASSES = 3;

/**
 * KILLs for victims running a statement, one at a time, each sent after the previous victim's
 * statement has ended (or VICTIM_WAIT_MS has passed). On MariaDB every `SLEEP()` waits under one
 * shared mutex, and a KILL that finds it taken (by the previous victim still on its way out) can
 * spin for 2 seconds: one batch of 300 such KILLs took 14 to 44 s, one at a time after each
 * victim's end 33 to 56 ms (see src/drill/mysql.ts). A victim's outcome is that of its first KILL
 * (1094: gone; 1095: failed), as in `killInBatches`; later passes only repeat a delivered KILL.
 */
export async function killOneByOne(
  deps: SequentialKill,
  victims: readonly { pid: number; queryId?: number }[],
  mode: KillMode,
): Promise<KillOutcome> {
  const sleep = deps.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = deps.now ?? Date.now;
  const outcome: KillOutcome = { killed: [], gone: [], failed: [] };
  let pending = [...victims];
  for (let pass = 0; pass < KILL_PASSES && pending.length > 0; pass++) {
    const again: typeof pending = [];
    for (const victim of pending) {
      const sent = await killInBatches(deps.run, [victim.pid], mode);
      if (pass === 0) {
        outcome.killed.push(...sent.killed);
        outcome.gone.push(...sent.gone);
        outcome.failed.push(...sent.failed);
      }
      if (sent.killed.length === 0) continue;
      const deadline = now() + VICTIM_WAIT_MS;
      for (;;) {
        const row = await deps.probe(victim.pid);
        if (!stillRunning(row, victim.queryId, mode)) break;
        if (now() >= deadline) {
          // Still running as if never killed: the KILL came too early, send it again. A
          // connection shown `Killed` is on its way out already.
          if (row?.command !== 'Killed') again.push(victim);
          break;
        }
        await sleep(VICTIM_POLL_MS);
      }
    }
    pending = again;
  }
  return outcome;
}
