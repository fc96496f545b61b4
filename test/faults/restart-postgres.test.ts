import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { pathWithThisNode, poolctlBin, startCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { shellQuote, TmuxSession } from '../helpers/tmux.js';
import { readEvents, sleep, type LooseEvent } from '../helpers/expect.js';

// Fault suite: the server goes away under poolctl — restarted while the operator reads the
// confirm, poolctl's own session killed by someone else then, or restarted in the middle of the
// kill. Each ends with one line and exit 3, and the transcript says what was done: the intent
// (every victim), what became of each as far as poolctl knows, and the end of the run.

const nodePath = pathWithThisNode();

describe('the server goes away during a kill (PostgreSQL)', () => {
  let server: PgServer;
  let held: HeldSessions | undefined;
  let tmux: TmuxSession | undefined;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 400 });
  });
  afterEach(async () => {
    tmux?.kill();
    await held?.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: server.superuserUrl });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => {});
    }
  };

  /** The interactive mitigate in a real terminal, stopped at its confirm. */
  async function atTheConfirm(transcript: string, victims: number) {
    held = await holdSessions(server.appUrl, { idle: victims, appNames: ['api'] });
    await sleep(1200);
    tmux = new TmuxSession(
      [
        'env -u CI',
        `PATH=${shellQuote(nodePath)}`,
        shellQuote(poolctlBin),
        'mitigate --action kill-idle --set kill_idle_after=1s --protect-app test-admin --pg',
        shellQuote(server.superuserUrl),
        '--transcript',
        shellQuote(transcript),
        '; echo "EXIT:$?"; sleep 600',
      ].join(' '),
    );
    await tmux.waitFor(new RegExp(`terminate these ${victims} sessions\\? \\(y/N\\)`));
    return tmux;
  }

  /** What the transcript says of the kill, and the run's end. */
  function record(transcript: string) {
    const events = readEvents(transcript);
    const intent = events.find((e) => e.type === 'intent') as LooseEvent | undefined;
    const outcomes = events
      .filter((e) => e.type === 'outcome')
      .flatMap((e) => e.results as { pid: number; outcome: string; reason?: string }[]);
    return { events, intent, outcomes, end: events.at(-1) };
  }

  function expectOneErrorLine(screen: string) {
    const errors = screen.split('\n').filter((l) => l.startsWith('poolctl: '));
    expect(errors, screen).toHaveLength(1);
    expect(errors[0]).toMatch(/server closed poolctl's connection/);
    expect(screen).not.toMatch(/\n\s+at /);
  }

  it('restarted between the confirm and the kill: exit 3, the intent and "unknown" recorded', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-fault-')), 'restart.jsonl');
    const session = await atTheConfirm(transcript, 5);
    await server.restart();
    session.keys('y', 'Enter');
    const screen = await session.waitFor(/EXIT:\d+/);
    expect(screen).toContain('EXIT:3');
    expectOneErrorLine(screen);

    const { intent, outcomes, end } = record(transcript);
    expect(intent?.victims.map((v: { pid: number }) => v.pid).sort()).toEqual(
      [...held!.pids].sort(),
    );
    expect(outcomes).toHaveLength(5);
    for (const o of outcomes) {
      expect(o.outcome).toBe('unknown');
      expect(o.reason).toMatch(/^the kill statement failed: /);
    }
    expect(end).toMatchObject({ type: 'session.end', status: 'error', exitCode: 3 });
  });

  it('its own session killed by someone else at the confirm: exit 3, the same record', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-fault-')), 'own.jsonl');
    const session = await atTheConfirm(transcript, 5);
    const killed = await admin(async (c) => {
      const { rows } = await c.query<{ n: number }>(
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'poolctl'",
      );
      return rows[0]!.n;
    });
    expect(killed).toBe(1);
    session.keys('y', 'Enter');
    const screen = await session.waitFor(/EXIT:\d+/);
    expect(screen).toContain('EXIT:3');
    expectOneErrorLine(screen);

    const { intent, outcomes, end } = record(transcript);
    expect(intent?.victims).toHaveLength(5);
    expect(outcomes.map((o) => o.outcome)).toEqual(Array(5).fill('unknown'));
    expect(end).toMatchObject({ type: 'session.end', status: 'error', exitCode: 3 });
    // Nothing was killed: the victims are all still there.
    const left = await admin(async (c) => {
      const { rows } = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [held!.pids],
      );
      return rows[0]!.n;
    });
    expect(left).toBe(5);
  });

  it('restarted in the middle of a kill of 300: exit 3, every victim named', async () => {
    held = await holdSessions(server.appUrl, { idle: 300, appNames: ['api'] });
    await sleep(1200);
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-fault-')), 'midkill.jsonl');
    const watcher = new pg.Client({ connectionString: server.superuserUrl });
    await watcher.connect();
    watcher.on('error', () => {});
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
    const { exited } = started;
    // As soon as the first victim is gone, the kill is in flight: restart under it.
    for (;;) {
      const { rows } = await watcher.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [held.pids],
      );
      if (rows[0]!.n < 300) break;
    }
    // A fast shutdown at once (pg_ctl itself takes longer to start than the kill to finish),
    // then the server comes back.
    const postmaster = Number(
      readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    process.kill(postmaster, 'SIGINT');
    await watcher.end().catch(() => {});
    const code = await exited;
    while (existsSync(join(server.dataDir, 'postmaster.pid'))) await sleep(50);
    await server.restart();

    expect(code, started.stderr()).toBe(3);
    expect(started.stderr().trim().split('\n').at(-1)).toMatch(
      /^poolctl: .*server closed poolctl's connection/,
    );
    const { intent, end } = record(transcript);
    expect(intent?.victims).toHaveLength(300);
    expect(end).toMatchObject({ type: 'session.end', status: 'error', exitCode: 3 });
  });
});
