import { describe, expect, it } from 'vitest';
import { executeKill } from '../../src/safety/kill.js';
import { asRecheckRows, classify } from '../../src/targets/mysql-kill.js';
import type { DatabaseTarget, Session, SignalRequest } from '../../src/targets/types.js';
import { fakeSession } from '../helpers/session-fixture.js';

const session = (pid: number, state = 'Sleep'): Session => fakeSession(pid, { state });

/** Records each signal request; every signalled session is gone at the first look. */
function recordingTarget(): { target: DatabaseTarget; requests: SignalRequest[] } {
  const requests: SignalRequest[] = [];
  const target = {
    engine: 'mysql',
    label: 'mysql://test@127.0.0.1:3306/',
    info: {} as DatabaseTarget['info'],
    query: async () => [],
    candidates: async () => [],
    signal: async (request: SignalRequest) => {
      requests.push(request);
      return { signalled: request.sessions.map((s) => s.pid), gone: [], spared: [], failed: [] };
    },
    stillThere: async () => new Set<number>(),
    close: async () => {},
  } satisfies DatabaseTarget;
  return { target, requests };
}

describe('a kill straight after the candidate query (--yes)', () => {
  const protection = { users: [], applications: [], includeSuperusers: false };

  it('skips the separate re-check for the first batch only: later ones go after earlier kills', async () => {
    const { target, requests } = recordingTarget();
    const victims = [1, 2, 3, 4, 5].map((pid) => session(pid));
    const report = await executeKill({
      target,
      sql: 'SELECT …',
      params: [],
      mode: 'terminate',
      victims,
      protection,
      batchSize: 2,
      readJustNow: true,
    });
    expect(requests.map((r) => [r.sessions.map((s) => s.pid), r.readJustNow])).toEqual([
      [[1, 2], true],
      [[3, 4], false],
      [[5], false],
    ]);
    expect(report.results.every((r) => r.outcome === 'terminated')).toBe(true);
  });

  it('an operator’s answer (no readJustNow) re-checks every batch', async () => {
    const { target, requests } = recordingTarget();
    await executeKill({
      target,
      sql: 'SELECT …',
      params: [],
      mode: 'terminate',
      victims: [session(1)],
      protection,
    });
    expect(requests[0]!.readJustNow).toBe(false);
  });

  it('MySQL: the sessions as read are the verdict: every one killed, idle or running', () => {
    const sessions = [session(7), session(8, 'Query')];
    const request: SignalRequest = {
      sql: 'SELECT …',
      params: [],
      mode: 'terminate',
      sessions,
      protection,
      readJustNow: true,
    };
    const { kill, result } = classify(request, asRecheckRows(sessions));
    expect(kill.map((s) => s.pid)).toEqual([7, 8]);
    expect(result).toEqual({ signalled: [], gone: [], spared: [], failed: [] });
  });
});
