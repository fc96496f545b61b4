import { sparedWording } from '../safety/selection.js';
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

/** What this server lets poolctl read, found once at connect (mysql.ts). */
export interface Readable {
  /**
   * Program names (the program_name connection attribute in
   * performance_schema.session_connect_attrs): performance_schema is on, the account may SELECT
   * the table and the server recorded poolctl's own. MariaDB ships with performance_schema OFF.
   */
  programNames: boolean;
  /**
   * How a running statement is told from the next one on the same connection: MariaDB's
   * PROCESSLIST.QUERY_ID; on MySQL 8 the statement event's EVENT_ID in
   * performance_schema.events_statements_current (where performance_schema is on and readable);
   * else not at all.
   */
  statementIds: StatementIds;
  /** Roles on this server and whether poolctl can read who holds them; absent: UNKNOWN_ROLES. */
  roles?: Roles;
}

export type StatementIds = 'query-id' | 'statement-events' | 'none';

/** The privileges that let an account KILL anyone's connection, as USER_PRIVILEGES names them. */
const KILL_PRIVILEGES = `('SUPER', 'CONNECTION ADMIN', 'CONNECTION_ADMIN')`;

/** poolctl's own account as USER_PRIVILEGES spells a grantee: 'user'@'host'. */
const OWN_GRANTEE = `CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                            SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')`;

/**
 * Whether USER_PRIVILEGES shows accounts other than ours, which the server does for all of them
 * or for none (it takes SELECT on the mysql schema; a table grant on mysql.global_priv or
 * mysql.user is not enough on MariaDB 10.11). A server with no other account reads as not
 * readable, which errs on the side of sparing.
 */
export const READS_GRANTS_SQL = `EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES
             WHERE GRANTEE <> ${OWN_GRANTEE})`;

/**
 * Roles (MariaDB 10.0.5+, MySQL 8): an account may hold SUPER or CONNECTION ADMIN through a role
 * it was granted, which USER_PRIVILEGES never shows as the account's own (MariaDB does not list
 * roles there at all). So where roles exist, no account is known not to be a superuser from its
 * direct grants alone.
 */
export interface Roles {
  /**
   * How poolctl tells whether its own account holds any role: 'listed', from
   * information_schema.APPLICABLE_ROLES (MariaDB; MySQL 8.0.19+); 'unlisted', roles exist but no
   * table lists ours (MySQL 8.0.0–8.0.18): assume it may; 'none': the server has no roles.
   */
  own: 'listed' | 'unlisted' | 'none';
  /**
   * Where the role grants of every account can be read (SELECT on the mysql schema):
   * mysql.roles_mapping with the roles' privileges in mysql.global_priv (MariaDB), or
   * mysql.role_edges (MySQL 8, whose USER_PRIVILEGES lists roles as accounts); 'unreadable':
   * an account's superuser status through roles is unknown.
   */
  membership: 'roles_mapping' | 'role_edges' | 'unreadable';
}

/** Where nothing was found out (unit tests, a server not yet asked): roles may exist, unreadable. */
export const UNKNOWN_ROLES: Roles = { own: 'unlisted', membership: 'unreadable' };

/** Whether poolctl's own account holds any role (SQL expression); see Roles.own. */
function ownRolesSql(roles: Roles): string {
  switch (roles.own) {
    case 'listed':
      return 'EXISTS (SELECT 1 FROM information_schema.APPLICABLE_ROLES)';
    case 'unlisted':
      return 'TRUE';
    case 'none':
      return 'FALSE';
  }
}

/**
 * One row about poolctl's own account. `reads_grants`: READS_GRANTS_SQL. `has_roles`: our
 * account holds a role (or may: Roles.own). `kills_others`: our account holds SUPER or
 * CONNECTION ADMIN directly, or holds a role that might give it either; without, the server
 * refuses to KILL another account's connection (error 1095).
 */
export function ownAccountSql(roles: Roles): string {
  return `SELECT
    ${READS_GRANTS_SQL} AS reads_grants,
    ${ownRolesSql(roles)} AS has_roles,
    EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES
             WHERE GRANTEE = ${OWN_GRANTEE}
               AND PRIVILEGE_TYPE IN ${KILL_PRIVILEGES})
      OR ${ownRolesSql(roles)} AS kills_others`;
}

/**
 * Whether a session of `user` is a superuser's, as far as the server says: 1 (an account of that
 * name holds SUPER or CONNECTION ADMIN, directly or through a role), 0 (known not to), NULL
 * (unknown: other accounts' grants or role grants are unreadable, and a KILL of ours would succeed
 * on it). Known not to: every account when the grants and the role grants are readable; our own
 * user name when our account holds no role (we read our own direct grants); anyone while our
 * account may not KILL other accounts' connections (no SUPER or CONNECTION ADMIN, no role: the
 * server refuses that KILL itself, error 1095). Matching on the user name alone errs on the side
 * of protecting: any host's account of that name with the privilege counts. Needs `me`
 * (ownAccountSql) and `su` (superusersSql).
 */
function superuserSql(user: string, roles: Roles): string {
  const rolesReadable = roles.own === 'none' || roles.membership !== 'unreadable';
  return `CASE WHEN su.user IS NOT NULL THEN 1
       WHEN ${rolesReadable ? 'me.reads_grants' : 'FALSE'}
            OR NOT me.kills_others
            OR (${user} = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND NOT me.has_roles) THEN 0
  END`;
}

/** The sessions' program names where readable, grouped so that it is materialized with a key. */
const PROGRAM_NAMES_SQL = `SELECT PROCESSLIST_ID, MAX(ATTR_VALUE) AS program_name
  FROM performance_schema.session_connect_attrs
  WHERE ATTR_NAME = 'program_name'
  GROUP BY PROCESSLIST_ID`;

/**
 * `sql` with performance_schema.session_connect_attrs read as a table of unknown program names
 * where the server does not let poolctl read them (performance_schema OFF, no SELECT on it): one
 * row per connection with a NULL program_name, so that a diagnosis joining it (holders.sql) runs
 * and shows the names as unknown instead of failing or showing none. Runbook SQL names the table
 * without an alias, as holders.sql does: it becomes a derived table of that name.
 */
export function readingProgramNamesFrom(sql: string, readable: boolean): string {
  if (readable) return sql;
  return sql.replace(
    /`?\bperformance_schema`?\s*\.\s*`?session_connect_attrs\b`?/gi,
    // One line: where the name stands in a `--` comment, the comment stays one.
    `(SELECT ID AS PROCESSLIST_ID, 'program_name' AS ATTR_NAME, CAST(NULL AS CHAR) AS ATTR_VALUE FROM ${PROCESSLIST}) AS session_connect_attrs`,
  );
}

/**
 * The SQL expression for the id of the statement a connection (`live`, a process list row) runs;
 * see Readable.statementIds. On MySQL 8: the top-level statement event of the connection's
 * thread. events_statements_current keeps a thread's last statement after it has ended, and the
 * next statement gets a new EVENT_ID.
 */
export function statementIdSql(live: string, ids: StatementIds): string {
  switch (ids) {
    case 'query-id':
      return `${live}.QUERY_ID`;
    case 'statement-events':
      return `(SELECT MAX(s.EVENT_ID)
     FROM performance_schema.threads t
     JOIN performance_schema.events_statements_current s ON s.THREAD_ID = t.THREAD_ID
     WHERE t.PROCESSLIST_ID = ${live}.ID AND s.NESTING_EVENT_LEVEL = 0)`;
    case 'none':
      return 'NULL';
  }
}

/** User (or role) names of the grantees in USER_PRIVILEGES that hold SUPER or CONNECTION ADMIN. */
const DIRECT_HOLDERS_SQL = `SELECT REPLACE(
    SUBSTRING(GRANTEE, 2, CHAR_LENGTH(GRANTEE) - LOCATE('@', REVERSE(GRANTEE)) - 2),
    '''''', '''') AS name
  FROM information_schema.USER_PRIVILEGES
  WHERE PRIVILEGE_TYPE IN ${KILL_PRIVILEGES}`;

/**
 * MariaDB's access bits for SUPER (1 << 15) and CONNECTION ADMIN (1 << 32) in mysql.global_priv
 * (measured on 10.11: a role granted only SUPER has access 32768, only CONNECTION ADMIN
 * 4294967296). MariaDB lists no role in USER_PRIVILEGES, so a role's privileges are read there.
 */
const MARIADB_KILL_ACCESS_BITS = 32768 + 4294967296;

/**
 * Accounts with SUPER or CONNECTION ADMIN (MySQL 8: CONNECTION_ADMIN), by user name: directly,
 * or through a role granted to them (roles granted to roles followed to any depth) where the role
 * grants are readable (Roles.membership).
 */
export function superusersSql(roles: Roles): string {
  switch (roles.membership) {
    case 'unreadable':
      return `SELECT DISTINCT name AS user FROM (${DIRECT_HOLDERS_SQL}) direct`;
    case 'roles_mapping':
      return `WITH RECURSIVE holders (name) AS (
  ${DIRECT_HOLDERS_SQL}
  UNION
  SELECT User FROM mysql.global_priv
    -- MariaDB 10.11 reads the JSON true as '1'.
    WHERE JSON_VALUE(Priv, '$.is_role') IN ('1', 'true')
      AND CAST(JSON_VALUE(Priv, '$.access') AS UNSIGNED) & ${MARIADB_KILL_ACCESS_BITS} <> 0
  UNION
  SELECT m.User FROM mysql.roles_mapping m JOIN holders h ON m.Role = h.name
)
SELECT DISTINCT name AS user FROM holders`;
    case 'role_edges':
      return `WITH RECURSIVE holders (name) AS (
  ${DIRECT_HOLDERS_SQL}
  UNION
  SELECT e.TO_USER FROM mysql.role_edges e JOIN holders h ON e.FROM_USER = h.name
)
SELECT DISTINCT name AS user FROM holders`;
  }
}

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
 * A runbook's candidate query, wrapped: never poolctl's own connection nor a server thread; each
 * session with its program name where readable (`application`, NULL where not: the adapter marks
 * it unknown) and whether its account is a superuser's (1, 0, or NULL for unknown: superuserSql).
 * Candidate SQL selects no application itself: reading it is the adapter's, so that no runbook
 * statement fails where program names cannot be read.
 */
export function candidatesSql(candidateSql: string, readable: Readable): string {
  const programs = readable.programNames
    ? `LEFT JOIN (${PROGRAM_NAMES_SQL}) a ON a.PROCESSLIST_ID = c.pid\n`
    : '';
  const roles = readable.roles ?? UNKNOWN_ROLES;
  return `SELECT c.*, ${readable.programNames ? 'a.program_name' : 'NULL'} AS application,
  ${superuserSql('c.user', roles)} AS superuser
FROM (
${asSubquery(candidateSql)}
) c
CROSS JOIN (${ownAccountSql(roles)}) me
LEFT JOIN (${superusersSql(roles)}) su ON su.user = c.user
${programs}WHERE c.pid <> CONNECTION_ID()
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

/** `LOWER(?), LOWER(?)`: n bound names, compared in lower case. */
function lowered(n: number): string {
  return Array.from({ length: n }, () => 'LOWER(?)').join(', ');
}

/**
 * The re-check, one statement: each shown id as the process list has it now, with the verdict of
 * the never-touch rules applied to the live row, and whether the candidate query (re-run here as
 * a derived table) still selects the same connection. `verdict = 'kill'` survives; every other
 * verdict names the reason it is spared. A shown id without a row is gone. The session token is
 * compared with the shown one by `classify`, which also reads why the rest were spared from the
 * same rows, so no second look-up is needed. The rules are the selection's (src/safety/selection.ts):
 * where a rule cannot be evaluated (program names unreadable while --protect-app is given, a
 * superuser status unknown), the session is spared.
 *
 * `query_id` is the id of the statement running now where the server tells statements apart
 * (Readable.statementIds): a cancel remembers it to tell the cancelled statement from the next.
 */
export function recheckSql(
  candidateSql: string,
  ids: readonly number[],
  protection: Protection,
  readable: Readable,
): string {
  // Names compare upper and lower case alike, whatever the collation, as the selection does
  // (selection.ts isAmong).
  const users = protection.users.length
    ? `LOWER(live.USER) IN (${lowered(protection.users.length)})`
    : 'FALSE';
  const named = (names: readonly string[]) =>
    names.length && readable.programNames
      ? `LOWER(COALESCE(a.program_name, '')) IN (${lowered(names.length)})`
      : 'FALSE';
  // An explicit --protect-app that cannot be evaluated spares everyone; the monitoring courtesy
  // list (protect_apps_default) does not.
  const appsUnknown = protection.applications.length && !readable.programNames ? 'TRUE' : 'FALSE';
  const roles = readable.roles ?? UNKNOWN_ROLES;
  const superusers = protection.includeSuperusers
    ? 'FALSE'
    : `${superuserSql('live.USER', roles)} = 1`;
  const superuserUnknown = protection.includeSuperusers
    ? 'FALSE'
    : `${superuserSql('live.USER', roles)} IS NULL`;
  const programs = readable.programNames
    ? `LEFT JOIN (${PROGRAM_NAMES_SQL}) a ON a.PROCESSLIST_ID = live.ID\n`
    : '';
  return `SELECT live.ID AS pid,
  CASE
    WHEN live.ID = CONNECTION_ID() THEN 'self'
    WHEN ${serverThread('live.USER', 'live.COMMAND')} THEN 'server'
    WHEN ${users} THEN 'protected-user'
    WHEN ${named(protection.applications)} THEN 'protected-application'
    WHEN ${appsUnknown} THEN 'application-unknown'
    WHEN ${named(protection.defaultApplications ?? [])} THEN 'monitoring'
    WHEN ${superusers} THEN 'superuser'
    WHEN ${superuserUnknown} THEN 'superuser-unknown'
    WHEN c.pid IS NULL THEN 'no-match'
    ELSE 'kill'
  END AS verdict,
  CONCAT(live.USER, '@', live.HOST) AS session_token,
  live.USER AS user,
  live.COMMAND AS command,
  CAST(UNIX_TIMESTAMP() - live.TIME AS SIGNED) AS started,
  ${statementIdSql('live', readable.statementIds)} AS query_id,
  ${readable.programNames ? 'a.program_name' : 'NULL'} AS application
FROM ${PROCESSLIST} live
LEFT JOIN (
  SELECT * FROM (
${asSubquery(candidateSql)}
  ) candidates
  -- Never merged into this query: materialized once, with a key on pid. Merged, the process list
  -- inside would be joined to the one outside without an index (50 ms at 1,000 connections).
  LIMIT 18446744073709551615
) c ON c.pid = live.ID AND c.session_token = CONCAT(live.USER, '@', live.HOST)
CROSS JOIN (${ownAccountSql(roles)}) me
LEFT JOIN (${superusersSql(roles)}) su ON su.user = live.USER
${programs}WHERE live.ID IN (${idList(ids)})`;
}

/** Parameters in the order their placeholders appear in `recheckSql`'s text. */
export function recheckParams(request: SignalRequest, readable: Readable): unknown[] {
  const { users, applications, defaultApplications = [] } = request.protection;
  return [
    ...users,
    ...(readable.programNames ? [...applications, ...defaultApplications] : []),
    ...request.params,
  ];
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
    const reason = sparedReason(shown, row, request);
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

/** Why the re-check spares a session, in the selection's words (selection.ts sparedWording). */
function sparedReason(shown: Session, row: Row, request: SignalRequest): string | undefined {
  const { mode, protection } = request;
  const user = String(row.user ?? '');
  const application = String(row.application ?? shown.application);
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
      return sparedWording.user(user);
    case 'protected-application':
      return sparedWording.application(application);
    case 'application-unknown':
      return sparedWording.applicationUnknown(
        shown.applicationUnknown ?? 'application unknown: program names cannot be read',
        protection,
      );
    case 'monitoring':
      return sparedWording.monitoring(application);
    case 'superuser':
      return sparedWording.superuser(user);
    case 'superuser-unknown':
      return (
        shown.superuserUnknown ??
        `superuser status unknown for "${user}": poolctl's account cannot read other accounts' ` +
          'grants (GRANT SELECT ON mysql.* to see them; --include-superusers to include)'
      );
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
    return (
      `permission denied (${said}): killing another account's connections needs CONNECTION ADMIN ` +
      "(GRANT CONNECTION ADMIN ON *.* TO poolctl's account; MySQL 8: CONNECTION_ADMIN) or SUPER"
    );
  }
  return `KILL failed (${said})`;
}

/**
 * The shown ids in the process list now, with what tells the same connection (and, for a cancel,
 * the same statement) from a new one. One small statement: it runs every few milliseconds.
 */
export function stillThereSql(ids: readonly number[], statementIds: StatementIds): string {
  const queryId =
    statementIds === 'none' ? '' : `, ${statementIdSql('p', statementIds)} AS query_id`;
  return `SELECT p.ID AS pid, CONCAT(p.USER, '@', p.HOST) AS session_token, p.COMMAND AS command,
  CAST(UNIX_TIMESTAMP() - p.TIME AS SIGNED) AS started${queryId}
FROM ${PROCESSLIST} p WHERE p.ID IN (${idList(ids)})`;
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
export function victimSql(id: number, statementIds: StatementIds): string {
  const queryId =
    statementIds === 'none' ? '' : `, ${statementIdSql('p', statementIds)} AS query_id`;
  return `SELECT p.COMMAND AS command, p.INFO AS info${queryId}
FROM ${PROCESSLIST} p WHERE p.ID = ${idList([id])}`;
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

/** Whether the row shows the statement with this id: both known and equal. */
function sameStatementId(row: Row | undefined, queryId: number | undefined): boolean {
  if (queryId === undefined || row?.query_id === null || row?.query_id === undefined) return false;
  return Number(row.query_id) === queryId;
}

export interface SequentialKill {
  run: BatchRunner;
  /** The victim's process list row now, undefined once gone. */
  probe: (id: number) => Promise<Row | undefined>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Looked at before every KILL: once aborted (Ctrl-C), no further KILL is sent. */
  signal?: AbortSignal;
}

/** killOneByOne's outcome: also the victims an interrupt left without their KILL. */
export interface SequentialKillOutcome extends KillOutcome {
  spared: { pid: number; reason: string }[];
}

/** Why a victim was left alone when Ctrl-C came while the KILLs went one at a time. */
export const INTERRUPTED_BEFORE_KILL = 'interrupted before its KILL';

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
 * (1094: gone; 1095: failed), as in `killInBatches`; later passes only repeat a delivered KILL,
 * and only after a fresh look shows the very statement that was killed still running: between
 * the look that decided on a repeat and the repeat itself, the other victims' KILLs went (up to
 * VICTIM_WAIT_MS each), and the connection may have started its next statement meanwhile.
 * Minutes can pass over many victims: an interrupt stops it before the next KILL, and the
 * victims never sent one are spared (INTERRUPTED_BEFORE_KILL).
 */
export async function killOneByOne(
  deps: SequentialKill,
  victims: readonly { pid: number; queryId?: number }[],
  mode: KillMode,
): Promise<SequentialKillOutcome> {
  const sleep = deps.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = deps.now ?? Date.now;
  const outcome: SequentialKillOutcome = { killed: [], gone: [], failed: [], spared: [] };
  let pending = [...victims];
  for (let pass = 0; pass < KILL_PASSES && pending.length > 0; pass++) {
    const again: typeof pending = [];
    for (const [i, victim] of pending.entries()) {
      if (deps.signal?.aborted) {
        // A repeat is only ever for a victim whose KILL went already: only the first pass
        // leaves victims without one.
        if (pass === 0) {
          for (const { pid } of pending.slice(i)) {
            outcome.spared.push({ pid, reason: INTERRUPTED_BEFORE_KILL });
          }
        }
        return outcome;
      }
      if (pass > 0) {
        const row = await deps.probe(victim.pid);
        const same =
          row?.command !== 'Killed' &&
          stillRunning(row, victim.queryId, mode) &&
          sameStatementId(row, victim.queryId);
        if (!same) continue;
      }
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
          // connection shown `Killed` is on its way out already. Only where the statement has an
          // id (MariaDB's QUERY_ID, MySQL 8's statement event) that is still the one killed: a
          // repeat without it could hit the connection's next statement, never shown to anyone.
          if (row?.command !== 'Killed' && sameStatementId(row, victim.queryId)) {
            again.push(victim);
          }
          break;
        }
        await sleep(VICTIM_POLL_MS);
      }
    }
    pending = again;
  }
  return outcome;
}
