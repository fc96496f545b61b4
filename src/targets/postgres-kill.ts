import { isAmong, sparedWording } from '../safety/selection.js';
import type { Row, Session, SignalRequest, SignalResult } from './types.js';

/**
 * The set-based kill statements for PostgreSQL. The signal function sits in the select list over
 * a MATERIALIZED set of victims that already passed every check; in a WHERE clause the planner
 * could evaluate it before the other conditions and signal every backend, poolctl's own included.
 */

/** A runbook's candidate query as a CTE body: no trailing semicolon, comments kept harmless. */
function asSubquery(sql: string): string {
  return `${sql.trim().replace(/;\s*$/, '')}\n`;
}

/** The candidates as the operator will see them: client backends only, never poolctl itself. */
export function candidatesSql(candidateSql: string): string {
  return `WITH candidates AS MATERIALIZED (
${asSubquery(candidateSql)})
SELECT c.*, coalesce(r.rolsuper, false) AS superuser
FROM candidates c
JOIN pg_stat_activity a ON a.pid = c.pid AND a.backend_type = 'client backend'
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid <> pg_backend_pid()
ORDER BY c.in_state_s DESC, c.pid`;
}

/**
 * Re-checks every shown session at execution time — same pid and backend_start, still selected by
 * the candidate query, still a client backend, not poolctl, not protected, signallable by us —
 * and signals exactly those, in one statement.
 */
export function signalSql(candidateSql: string, paramCount: number, mode: 'cancel' | 'terminate') {
  const p = (i: number) => `$${paramCount + i}`;
  const signal = mode === 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
  return `WITH candidates AS MATERIALIZED (
${asSubquery(candidateSql)}),
shown AS (
  SELECT * FROM unnest(${p(1)}::int[], ${p(2)}::text[]) AS s(pid, session_token)
),
me AS (
  SELECT rolsuper FROM pg_roles WHERE rolname = current_user
),
victims AS MATERIALIZED (
  SELECT c.pid,
         (me.rolsuper OR NOT coalesce(r.rolsuper, false))
           AND (me.rolsuper
                OR pg_has_role(a.usesysid, 'USAGE')
                OR pg_has_role('pg_signal_backend', 'USAGE')) AS permitted
  FROM candidates c
  JOIN shown s ON s.pid = c.pid AND s.session_token = c.session_token
  JOIN pg_stat_activity a ON a.pid = c.pid AND a.backend_type = 'client backend'
  LEFT JOIN pg_roles r ON r.oid = a.usesysid
  CROSS JOIN me
  WHERE a.pid <> pg_backend_pid()
    -- Names compare upper and lower case alike, as the selection does (selection.ts isAmong).
    AND lower(a.usename) <> ALL (SELECT lower(n) FROM unnest(${p(3)}::text[]) n)
    AND lower(coalesce(a.application_name, '')) <> ALL (SELECT lower(n) FROM unnest(${p(4)}::text[]) n)
    AND (${p(5)}::boolean OR NOT coalesce(r.rolsuper, false))
)
SELECT pid, permitted,
       CASE WHEN permitted THEN ${signal}(pid) ELSE false END AS signalled
FROM victims`;
}

export function signalParams(request: SignalRequest): unknown[] {
  return [
    ...request.params,
    request.sessions.map((s) => s.pid),
    request.sessions.map((s) => s.sessionToken),
    request.protection.users,
    // The monitoring courtesy list is matched like --protect-app: application names are always
    // readable in pg_stat_activity.
    [...request.protection.applications, ...(request.protection.defaultApplications ?? [])],
    request.protection.includeSuperusers,
  ];
}

/** What became of the shown sessions the kill statement left alone: gone, reused, or changed. */
export const LOOKUP_SQL = `SELECT a.pid, a.backend_start::text AS session_token, a.state,
  a.usename AS user, coalesce(a.application_name, '') AS application,
  coalesce(r.rolsuper, false) AS superuser
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = ANY ($1::int[])`;

export function classify(request: SignalRequest, killed: Row[], lookup: Row[]): SignalResult {
  const result: SignalResult = { signalled: [], gone: [], spared: [], failed: [] };
  const handled = new Set<number>();
  for (const row of killed) {
    const pid = Number(row.pid);
    handled.add(pid);
    if (!row.permitted) {
      result.failed.push({
        pid,
        reason: 'permission denied: not a member of its role or of pg_signal_backend',
      });
    } else if (row.signalled) {
      result.signalled.push(pid);
    } else {
      result.gone.push(pid);
    }
  }
  const now = new Map(lookup.map((r) => [Number(r.pid), r]));
  for (const session of request.sessions) {
    if (handled.has(session.pid)) continue;
    const current = now.get(session.pid);
    if (!current) result.gone.push(session.pid);
    else result.spared.push({ pid: session.pid, reason: sparedReason(session, current, request) });
  }
  return result;
}

/** Why the kill statement left a session alone, in the selection's words (selection.ts). */
function sparedReason(shown: Session, now: Row, request: SignalRequest): string {
  const { protection } = request;
  const user = String(now.user);
  const application = String(now.application);
  if (now.session_token !== shown.sessionToken) return 'a new session took over the pid';
  if (isAmong(protection.users, user)) return sparedWording.user(user);
  if (isAmong(protection.applications, application)) return sparedWording.application(application);
  if (isAmong(protection.defaultApplications, application)) {
    return sparedWording.monitoring(application);
  }
  if (now.superuser === true && !protection.includeSuperusers) return sparedWording.superuser(user);
  if (now.state !== shown.state) return `no longer matches: now ${now.state ?? 'unknown'}`;
  return 'no longer matches the selection';
}

/** Shown sessions still there: the same backend and, for a cancel, the same running statement. */
export function stillThereSql(mode: 'cancel' | 'terminate'): string {
  const sameStatement =
    mode === 'cancel' ? `AND a.state = 'active' AND a.query_start::text = s.query_token` : '';
  return `SELECT a.pid
FROM pg_stat_activity a
JOIN unnest($1::int[], $2::text[], $3::text[]) AS s(pid, session_token, query_token)
  ON a.pid = s.pid AND a.backend_start::text = s.session_token
WHERE true ${sameStatement}`;
}
