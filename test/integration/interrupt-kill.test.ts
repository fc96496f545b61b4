import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { readEvents, sleep } from '../helpers/expect.js';

describe('Ctrl-C in the middle of a kill', () => {
  let server: PgServer;
  let held: HeldSessions;
  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 400 });
    held = await holdSessions(server.appUrl, { idle: 300, appNames: ['api'] });
    await sleep(1200);
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  it('finishes the batch in flight, records every victim, then exits 130', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-int-')), 'kill.jsonl');
    // Through the package's bin, as users run it.
    const started = startCli([
      'mitigate',
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--yes',
      '--protect-app',
      'test-admin',
      '--pg',
      server.superuserUrl,
      '--transcript',
      transcript,
    ]);
    const { child, exited } = started;
    // The answer (--yes) is written the instant before the kill starts: interrupt then.
    for (let i = 0; i < 2000; i++) {
      if (existsSync(transcript) && readFileSync(transcript, 'utf8').includes('"type":"prompt"'))
        break;
      await sleep(1);
    }
    child.kill('SIGINT');
    const code = await exited;

    expect(code).toBe(130);
    expect(started.stderr()).toContain('finishing the step in flight');
    const events = readEvents(transcript);
    // Audit first: the intent (every victim) is on disk before the kill; the outcomes follow.
    const types = events.map((e) => e.type);
    expect(types.indexOf('intent')).toBeGreaterThan(types.indexOf('prompt'));
    expect(types.indexOf('outcome')).toBeGreaterThan(types.indexOf('intent'));
    expect(types.indexOf('action')).toBeGreaterThan(types.indexOf('outcome'));
    expect(events.find((e) => e.type === 'intent')!.victims).toHaveLength(300);
    const action = events.find((e) => e.type === 'action')!;
    expect(action).toMatchObject({ id: 'kill-idle', executed: true });
    expect(action.results).toHaveLength(300);
    expect(new Set(action.results.map((r: { outcome: string }) => r.outcome))).toEqual(
      new Set(['terminated']),
    );
    expect(events.at(-1)).toMatchObject({
      type: 'session.end',
      status: 'interrupted',
      exitCode: 130,
    });

    const admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [held.pids],
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await admin.end();
    }
  });
});
