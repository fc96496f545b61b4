import type { Row, Session } from './types.js';

/**
 * A candidate query's row as a Session. Every engine's candidate SQL selects the same snake_case
 * columns: pid, session_token, query_token, user, application, client, state, in_state_s, query,
 * and the adapter adds superuser.
 */
export function toSession(row: Row): Session {
  return {
    pid: Number(row.pid),
    sessionToken: String(row.session_token ?? ''),
    queryToken: String(row.query_token ?? ''),
    user: String(row.user ?? ''),
    application: String(row.application ?? ''),
    client: String(row.client ?? ''),
    state: String(row.state ?? ''),
    inStateS: Number(row.in_state_s ?? 0),
    query: String(row.query ?? ''),
    superuser: Boolean(row.superuser),
  };
}
