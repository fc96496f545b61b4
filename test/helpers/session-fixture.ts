import type { Session } from '../../src/targets/types.js';

/** A sleeping MySQL-style session as a candidate query returns it, for unit tests. */
export function fakeSession(pid: number, extra: Partial<Session> = {}): Session {
  return {
    pid,
    sessionToken: `app@10.0.0.1:${pid}`,
    queryToken: '1000',
    user: 'app',
    application: 'api',
    client: '10.0.0.1',
    state: 'Sleep',
    inStateS: 400,
    query: '',
    superuser: false,
    ...extra,
  };
}
