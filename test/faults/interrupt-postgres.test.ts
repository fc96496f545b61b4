import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli, startCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { readEvents, sleep, type LooseEvent } from '../helpers/expect.js';

// Fault suite: a run that ends in the middle of a kill of 300 sessions — a Ctrl-C pressed twice
// (the second exits at once), or a SIGKILL — leaves every session that is gone named in the
// transcript: the intent at least, and the outcomes of the batches that finished.

const VICTIMS = 300;

describe('a kill of a few hundred sessions cut short (PostgreSQL)', () => {
  let server: PgServer;
  let admin: pg.Client;
  let held: HeldSessions;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: VICTIMS + 60 });
    admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });
  beforeEach(async () => {
    held = await holdSessions(server.appUrl, { idle: VICTIMS, appNames: ['api'] });
    await sleep(1200); // idle past kill_idle_after=1s
  });
  afterEach(async () => {
    await held?.close();
  });

  const present = async (): Promise<Set<number>> => {
    const { rows } = await admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [held.pids],
    );
    return new Set(rows.map((r) => r.pid));
  };

  /** Starts the kill and resolves as soon as the first victim is gone: the kill is in flight. */
  async function killInFlight(transcript: string) {
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
    // The intent is written the instant before the kill statement is sent (audit first): a
    // signal sent once it is on disk lands while the kill is in flight, not after the run.
    const deadline = Date.now() + 20_000;
    while (!(
      existsSync(transcript) && readFileSync(transcript, 'utf8').includes('"type":"intent"')
    )) {
      if (Date.now() > deadline) throw new Error(`no intent was written: ${started.stderr()}`);
      await sleep(1);
    }
    const firstGone = async () => {
      while ((await present()).size === VICTIMS) {
        if (Date.now() > deadline) throw new Error(`the kill never started: ${started.stderr()}`);
      }
    };
    return { child, exited, firstGone, stderr: started.stderr };
  }

  /** Every session gone once things settle, and every pid the transcript names as a victim. */
  async function goneAndNamed(transcript: string) {
    await sleep(1500); // let signalled backends finish exiting
    const left = await present();
    const gone = held.pids.filter((p) => !left.has(p));
    const events = readEvents(transcript);
    const named = new Set<number>();
    for (const e of events)
      if (e.type === 'intent' || e.type === 'action')
        for (const v of e.victims as { pid: number }[]) named.add(v.pid);
    return { gone, named, events };
  }

  it('Ctrl-C twice: exits 130 at once and every session gone is named (intent first)', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-fault-')), 'sigint.jsonl');
    const run = await killInFlight(transcript);
    run.child.kill('SIGINT'); // mid-kill: noted, the kill goes on
    await run.firstGone();
    run.child.kill('SIGINT'); // the second exits at once
    const code = await run.exited;
    expect(code).toBe(130);
    expect(run.stderr()).toContain('finishing the step in flight');

    const { gone, named, events } = await goneAndNamed(transcript);
    expect(gone.length).toBeGreaterThan(0);
    expect(gone.filter((p) => !named.has(p))).toEqual([]);
    const types = events.map((e) => e.type);
    const intent = events.find((e) => e.type === 'intent') as LooseEvent;
    expect(intent).toMatchObject({ step: 'kill-idle', mode: 'terminate', approvedBy: '--yes' });
    expect(intent.victims).toHaveLength(VICTIMS);
    // Each victim by pid and backend_start (the session token), user and client.
    expect(intent.victims[0]).toMatchObject({ user: 'app', application: 'api' });
    expect(intent.victims[0].sessionToken).toMatch(/^\d{4}-\d\d-\d\d/);
    expect(types.indexOf('intent')).toBeGreaterThan(types.indexOf('prompt'));
    expect(events.at(-1)).toMatchObject({ type: 'session.end', exitCode: code });
  });

  it('SIGKILL: every session gone is named, and the export says the outcome is unknown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'poolctl-fault-'));
    const transcript = join(dir, 'sigkill.jsonl');
    const run = await killInFlight(transcript);
    await run.firstGone();
    run.child.kill('SIGKILL');
    const code = await run.exited;
    expect(code).toBe(137);

    const { gone, named, events } = await goneAndNamed(transcript);
    expect(gone.length).toBeGreaterThan(0);
    expect(gone.filter((p) => !named.has(p))).toEqual([]);
    expect(events.some((e) => e.type === 'session.end')).toBe(code === 0);

    const md = await runCli(['transcript', 'export', transcript, '--format', 'md']);
    expect(md.code).toBe(0);
    expect(md.stdout).toContain('kill-idle');
    if (!events.some((e) => e.type === 'action')) {
      expect(md.stdout).toContain('**Interrupted:**');
    }
  });
});
