import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseMitigateOptions, runMitigate } from '../../src/commands/mitigate.js';
import { connectDatabase } from '../../src/targets/connect.js';
import type { DatabaseTarget, SignalRequest } from '../../src/targets/types.js';
import { sleep } from '../helpers/expect.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// Fault suite, audit first: at the moment the kill statement is about to be sent, the intent is
// already in the transcript file on disk, naming exactly the sessions about to be signalled, and
// every one of them is still alive. Checked from inside the REAL PostgreSQL target's signal(): a
// wrapper that reads the file through its own descriptor, then delegates to the real adapter.

interface Intent {
  type: 'intent';
  mode: string;
  victims: { pid: number; sessionToken: string }[];
}

describe('the intent is on disk before the kill statement is sent (PostgreSQL)', () => {
  let server: PgServer;
  let admin: pg.Client;
  let held: HeldSessions | undefined;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 120 });
    admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
  });
  afterEach(async () => {
    await held?.close();
    held = undefined;
  });
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });

  const alive = async (pids: number[]): Promise<number[]> => {
    const { rows } = await admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid',
      [pids],
    );
    return rows.map((r) => r.pid);
  };

  /** What the wrapper saw at each signal(): the request, and the intents on disk at that moment. */
  interface Seen {
    request: SignalRequest;
    intents: Intent[];
    aliveThen: number[];
  }

  /** The real target, with signal() checked before it is delegated. */
  function watched(target: DatabaseTarget, transcript: string, seen: Seen[]): DatabaseTarget {
    return {
      engine: target.engine,
      label: target.label,
      info: target.info,
      query: (sql, params) => target.query(sql, params),
      change: (sql, params) => target.change(sql, params),
      candidates: (request) => target.candidates(request),
      stillThere: (sessions, mode) => target.stillThere(sessions, mode),
      close: () => target.close(),
      async signal(request) {
        const intents = readFileSync(transcript, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { type: string })
          .filter((e): e is Intent => e.type === 'intent');
        const aliveThen = await alive(request.sessions.map((s) => s.pid));
        seen.push({ request, intents, aliveThen });
        return target.signal(request);
      },
    };
  }

  async function mitigate(flags: Parameters<typeof parseMitigateOptions>[0], seen: Seen[]) {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-intent-')), 'inc.jsonl');
    const deps = inProcessDeps(new ScriptedPrompter([]), { tty: false });
    deps.connect = async (spec) => watched(await connectDatabase(spec), transcript, seen);
    const outcome = await runMitigate(
      parseMitigateOptions({
        pg: server.superuserUrl,
        protectApp: ['test-admin'],
        yes: true,
        output: 'json',
        transcript,
        ...flags,
      }),
      deps,
    );
    return { outcome, transcript };
  }

  const byPid = (list: { pid: number; sessionToken: string }[]) =>
    list.map((s) => `${s.pid}@${s.sessionToken}`).sort();

  it('kill-idle: the intent in the file names exactly the sessions signalled, all still alive then', async () => {
    held = await holdSessions(server.appUrl, { idle: 60, appNames: ['api'] });
    await sleep(1200);
    const seen: Seen[] = [];
    const { outcome } = await mitigate(
      { action: ['kill-idle'], set: ['kill_idle_after=1s'] },
      seen,
    );
    expect(outcome.exitCode).toBe(0);
    expect(seen).toHaveLength(1);
    const [{ request, intents, aliveThen }] = seen as [Seen];
    expect(request.sessions.map((s) => s.pid).sort()).toEqual([...held.pids].sort());
    expect(intents).toHaveLength(1);
    expect(intents[0]!.mode).toBe('terminate');
    expect(byPid(intents[0]!.victims)).toEqual(byPid(request.sessions));
    expect(aliveThen).toHaveLength(60); // nothing signalled yet
    expect(await alive(held.pids)).toEqual([]);
  });

  it('--escalate: a second intent, naming exactly the sessions to terminate, precedes the second signal', async () => {
    // Statements that swallow cancel requests (as in mitigate-postgres.test.ts): only the
    // escalation's terminate ends them.
    const stubborn: pg.Client[] = [];
    for (let i = 0; i < 3; i++) {
      const c = new pg.Client({ connectionString: server.appUrl, application_name: 'batch' });
      c.on('error', () => {});
      await c.connect();
      c.query(
        `DO $$ BEGIN LOOP BEGIN LOOP PERFORM pg_sleep(0.05); END LOOP; EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`,
      ).catch(() => {});
      stubborn.push(c);
    }
    await sleep(1300);
    const seen: Seen[] = [];
    const { outcome } = await mitigate(
      {
        action: ['cancel-long'],
        set: ['cancel_long_after=1s'],
        escalate: '1s',
      },
      seen,
    );
    for (const c of stubborn) await c.end().catch(() => {});
    expect(outcome.exitCode).toBe(0);
    expect(seen.map((s) => s.request.mode)).toEqual(['cancel', 'terminate']);
    for (const [i, { request, intents }] of seen.entries()) {
      // At the i-th signal, the (i+1)-th intent is on disk and names exactly its sessions.
      expect(intents).toHaveLength(i + 1);
      expect(intents[i]!.mode).toBe(request.mode);
      expect(byPid(intents[i]!.victims)).toEqual(byPid(request.sessions));
    }
  });
});
