import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseMitigateOptions, runMitigate } from '../../src/commands/mitigate.js';
import type { Choice, Prompter } from '../../src/io/prompter.js';
import { connectDatabase } from '../../src/targets/connect.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { readEvents, sleep, sorted } from '../helpers/expect.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { runCli } from '../helpers/run-cli.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

const KILL_ALL = 'test/fixtures/runbooks/postgres-kill-all/kill-all.yaml';

interface Report {
  status: string;
  actions: {
    id: string;
    executed: boolean;
    declined: boolean;
    answeredBy?: string;
    victims: { pid: number }[];
    results: { pid: number; outcome: string; reason?: string }[];
    spared: { pid: number; reason: string }[];
    before?: Record<string, number>;
    after?: Record<string, number>;
  }[];
  transcript: string;
}

let server: PgServer;
let admin: pg.Client;
const open: HeldSessions[] = [];
const clients: pg.Client[] = [];

async function hold(opts: Parameters<typeof holdSessions>[1], url = server.appUrl) {
  const held = await holdSessions(url, opts);
  open.push(held);
  return held;
}

async function client(url: string, applicationName: string) {
  const c = new pg.Client({ connectionString: url, application_name: applicationName });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  return { c, pid };
}

async function alive(pids: number[]): Promise<number[]> {
  const { rows } = await admin.query(
    'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])',
    [pids],
  );
  return rows.map((r) => r.pid as number).sort((a, b) => a - b);
}

const deps = (prompter: Prompter, stateDir: string) =>
  inProcessDeps(prompter, { stateDir, argv: ['poolctl', 'mitigate'] });

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 100 });
  await server.psql(
    "CREATE ROLE keeper LOGIN PASSWORD 'keeper-pw'; CREATE ROLE other LOGIN PASSWORD 'other-pw'; GRANT CONNECT ON DATABASE appdb TO keeper, other; GRANT pg_read_all_stats TO app;",
  );
  admin = new pg.Client({ connectionString: server.superuserUrl, application_name: 'test-admin' });
  await admin.connect();
});

afterEach(async () => {
  while (open.length) await open.pop()!.close();
  while (clients.length)
    await clients
      .pop()!
      .end()
      .catch(() => {});
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.stop();
});

describe('mitigate on PostgreSQL: the safety rules against a real server', () => {
  it('a kill-all selection spares poolctl, superusers, protected users and apps, and background workers', async () => {
    const victims = await hold({ idle: 5, appNames: ['api'] });
    const superuser = await client(server.superuserUrl, 'psql');
    const protectedApp = await client(server.appUrl, 'migrations');
    const keeper = await client(server.url('keeper', 'keeper-pw', 'appdb'), 'api');
    const background = (
      await admin.query("SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'")
    ).rows.map((r) => r.pid as number);
    expect(background.length).toBeGreaterThan(2); // checkpointer, walwriter, autovacuum launcher…

    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--runbook',
      KILL_ALL,
      '--action',
      'kill-all',
      '--protect-app',
      'migrations',
      '--protect-user',
      'keeper',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    const terminated = action.results.filter((r) => r.outcome === 'terminated').map((r) => r.pid);
    // Only the ordinary sessions die (the test's own admin connection is a superuser: spared).
    expect(sorted(terminated)).toEqual(sorted(victims.pids));
    expect(await alive(victims.pids)).toEqual([]);
    expect(await alive([superuser.pid, protectedApp.pid, keeper.pid])).toEqual(
      sorted([superuser.pid, protectedApp.pid, keeper.pid]),
    );
    expect(await alive(background)).toEqual(sorted(background));
    const reasons = Object.fromEntries(action.spared.map((s) => [s.pid, s.reason]));
    expect(reasons[superuser.pid]).toMatch(/superuser/);
    expect(reasons[protectedApp.pid]).toMatch(/protected application "migrations"/);
    expect(reasons[keeper.pid]).toMatch(/protected user "keeper"/);
    for (const pid of background) expect(action.victims.map((v) => v.pid)).not.toContain(pid);
  });

  it('the kill statement itself refuses background workers, poolctl and a reused pid', async () => {
    const bystander = await client(server.appUrl, 'api');
    const target = await connectDatabase({
      engine: 'postgres',
      host: server.host,
      port: server.port,
      user: 'postgres',
      password: new URL(server.superuserUrl).password,
      database: 'postgres',
      connectTimeoutMs: 5000,
      statementTimeoutMs: 10000,
      from: 'test',
    });
    try {
      const sql = readFileSync('test/fixtures/runbooks/postgres-kill-all/kill-all.sql', 'utf8');
      const { rows } = await admin.query(
        "SELECT pid, backend_start::text AS token FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
      );
      const checkpointer = rows[0] as { pid: number; token: string };
      const session = (pid: number, sessionToken: string) => ({
        pid,
        sessionToken,
        queryToken: '',
        user: 'x',
        application: '',
        client: '',
        state: 'idle',
        inStateS: 0,
        query: '',
        superuser: false,
      });
      const result = await target.signal({
        sql,
        params: [],
        mode: 'terminate',
        protection: { users: [], applications: [], includeSuperusers: true },
        sessions: [
          session(checkpointer.pid, checkpointer.token),
          session(target.info.ownSessionId, 'whatever'),
          // The bystander's pid with another backend_start: a new session reusing the pid.
          session(bystander.pid, '2000-01-01 00:00:00+00'),
        ],
      });
      expect(result.signalled).toEqual([]);
      expect(sorted(result.spared.map((s) => s.pid))).toEqual(
        sorted([checkpointer.pid, target.info.ownSessionId, bystander.pid]),
      );
      expect(result.spared.find((s) => s.pid === bystander.pid)?.reason).toBe(
        'a new session took over the pid',
      );
      expect(await alive([checkpointer.pid, bystander.pid])).toEqual(
        sorted([checkpointer.pid, bystander.pid]),
      );
    } finally {
      await target.close();
    }
  });

  it('a victim that turns active between showing and killing is spared', async () => {
    const sessions = await Promise.all([1, 2, 3, 4].map(() => client(server.appUrl, 'api')));
    await sleep(1200);
    const [changing, ...others] = sessions as [(typeof sessions)[0], ...typeof sessions];
    let asked = '';
    // While the operator reads the table, one victim starts working.
    const prompter: Prompter = {
      async confirm(message) {
        asked = message;
        changing.c.query('SELECT pg_sleep(2)').catch(() => {});
        for (let i = 0; i < 200; i++) {
          const { rows } = await admin.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [
            changing.pid,
          ]);
          if (rows[0]?.state === 'active') break;
          await sleep(10);
        }
        return true;
      },
      async select<T extends string>(message: string, _choices: Choice<T>[]): Promise<T> {
        throw new Error(`unexpected select: ${message}`);
      },
      async input(message) {
        throw new Error(`unexpected input: ${message}`);
      },
      async typedConfirm(message) {
        throw new Error(`unexpected typed confirm: ${message}`);
      },
    };
    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-mitigate-'));
    const d = deps(prompter, stateDir);
    const outcome = await runMitigate(
      parseMitigateOptions({
        pg: server.superuserUrl,
        action: ['kill-idle'],
        set: ['kill_idle_after=1s'],
        protectApp: ['test-admin'],
      }),
      d,
    );
    expect(asked).toBe('Terminate idle connections: terminate these 4 sessions?');
    expect(outcome.exitCode).toBe(0);
    expect(d.io.stdout()).toContain('Will terminate 4 sessions.');
    expect(d.io.stdout()).toMatch(/3 terminated · 1 spared/);
    expect(await alive([changing.pid])).toEqual([changing.pid]);
    expect(await alive(others.map((o) => o.pid))).toEqual([]);
    expect(d.io.stdout()).toContain(`pid ${changing.pid} spared: no longer matches: now active`);
  });

  it('--max-victims caps one step, oldest first', async () => {
    const older = await hold({ idle: 3, appNames: ['api'] });
    await sleep(300);
    const newer = await hold({ idle: 5, appNames: ['api'] });
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--protect-app',
      'test-admin',
      '--max-victims',
      '3',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    expect(sorted(action.victims.map((v) => v.pid))).toEqual(sorted(older.pids));
    expect(action.spared.filter((s) => s.reason === 'over --max-victims 3')).toHaveLength(5);
    expect(await alive(older.pids)).toEqual([]);
    expect(await alive(newer.pids)).toEqual(sorted(newer.pids));
  });

  it('above confirm_typed_over the operator types the count; a wrong count kills nothing (exit 5)', async () => {
    const held = await hold({ idle: 25, appNames: ['worker'] });
    await sleep(1200);
    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-mitigate-'));
    const wrong = new ScriptedPrompter([
      { expect: 'Terminate idle connections: terminate these 25', answer: '24' },
    ]);
    const options = parseMitigateOptions({
      pg: server.superuserUrl,
      action: ['kill-idle'],
      set: ['kill_idle_after=1s'],
      protectApp: ['test-admin'],
      incident: 'typed-confirm',
    });
    const first = await runMitigate(options, deps(wrong, stateDir));
    wrong.verify();
    expect(first.exitCode).toBe(5);
    expect(await alive(held.pids)).toEqual(sorted(held.pids));

    const right = new ScriptedPrompter([
      { expect: 'Terminate idle connections: terminate these 25', answer: '25' },
    ]);
    const second = await runMitigate(options, deps(right, stateDir));
    right.verify();
    expect(second.exitCode).toBe(0);
    expect(await alive(held.pids)).toEqual([]);

    // One incident, one transcript: both runs, the questions, who answered, every victim's fate.
    const events = readEvents(join(stateDir, 'poolctl/incidents/typed-confirm.jsonl'));
    const prompts = events.filter((e) => e.type === 'prompt');
    expect(prompts.map((p) => [p.answer, p.answeredBy])).toEqual([
      ['no', 'operator'],
      ['yes', 'operator'],
    ]);
    const actions = events.filter((e) => e.type === 'action');
    expect(actions[0]).toMatchObject({ id: 'kill-idle', executed: false, declined: true });
    const done = actions[1] as unknown as {
      results: { pid: number; outcome: string }[];
      before: Record<string, number>;
      after: Record<string, number>;
    };
    expect(done.results).toHaveLength(25);
    expect(new Set(done.results.map((r) => r.outcome))).toEqual(new Set(['terminated']));
    expect(done.before.connections! - done.after.connections!).toBe(25);
    expect(events.filter((e) => e.type === 'session.end').map((e) => e.exitCode)).toEqual([5, 0]);
  });

  it('without a terminal and without --yes it kills nothing, says what it would do, exits 5', async () => {
    const held = await hold({ idle: 3, appNames: ['api'] });
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--protect-app',
      'test-admin',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('would terminate 3 sessions: pass --yes');
    const report = JSON.parse(result.stdout) as Report;
    expect(report.actions[0]).toMatchObject({
      executed: false,
      declined: true,
      answeredBy: 'non-interactive',
    });
    expect(await alive(held.pids)).toEqual(sorted(held.pids));
  });

  it('--dry-run never changes anything, even with --yes', async () => {
    const held = await hold({ idle: 3, appNames: ['api'] });
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--protect-app',
      'test-admin',
      '--dry-run',
      '--yes',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--dry-run: would terminate 3 sessions; nothing was changed');
    expect(await alive(held.pids)).toEqual(sorted(held.pids));
  });

  it('--yes terminates, records --yes as the answer, and shows before → after', async () => {
    const held = await hold({ idle: 6, idleInTx: 2, appNames: ['api'] });
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      '--action',
      'kill-idle-in-tx',
      '--set',
      'kill_idle_after=1s',
      '--set',
      'idle_in_tx_after=1s',
      '--protect-app',
      'test-admin',
      '--yes',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('6 terminated');
    expect(result.stdout).toContain('2 terminated');
    expect(result.stdout).toMatch(/Overall: Utilization [\d.]+% → [\d.]+% \(\d+ → \d+ connections/);
    expect(await alive(held.pids)).toEqual([]);
    const transcript = /Transcript: (.*\.jsonl)/.exec(result.stdout)![1]!;
    const events = readEvents(transcript);
    expect(events.filter((e) => e.type === 'prompt').every((e) => e.answeredBy === '--yes')).toBe(
      true,
    );
  });

  it('cancel-long cancels the queries and leaves the sessions', async () => {
    const held = await hold({ long: 3, appNames: ['batch'] });
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'cancel-long',
      '--set',
      'cancel_long_after=1s',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    expect(action.results.map((r) => r.outcome)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(await alive(held.pids)).toEqual(sorted(held.pids));
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1) AND state = 'active'",
      [held.pids],
    );
    expect(rows[0].n).toBe(0);
  });

  it('--escalate terminates what a cancel could not stop', async () => {
    const stubborn = await client(server.appUrl, 'batch');
    // A statement that swallows cancel requests: only terminating the session ends it. The whole
    // inner loop is inside the protected block: with the block inside the loop instead, a cancel
    // arriving between two iterations (outside the block) ended the statement, once in CI.
    stubborn.c
      .query(
        `DO $$ BEGIN LOOP BEGIN LOOP PERFORM pg_sleep(0.05); END LOOP; EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`,
      )
      .catch(() => {});
    await sleep(1300);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'cancel-long',
      '--set',
      'cancel_long_after=1s',
      '--escalate',
      '1s',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    expect(action.results).toEqual([
      { pid: stubborn.pid, outcome: 'terminated', reason: 'cancel had no effect in 1s' },
    ]);
    expect(await alive([stubborn.pid])).toEqual([]);
  });

  it('--pid terminates exactly that session', async () => {
    const held = await hold({ idle: 2, appNames: ['api'] });
    const [victim, bystander] = held.pids as [number, number];
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--pid',
      String(victim),
      '--yes',
    ]);
    expect(result.code).toBe(0);
    expect(await alive([victim, bystander])).toEqual([bystander]);
  });

  // `app` may read every session's state (pg_read_all_stats) but signal only its own role's.
  it('a victim poolctl may not signal fails alone; the others are still terminated (exit 4)', async () => {
    const mine = await hold({ idle: 2, appNames: ['api'] });
    const theirs = await hold(
      { idle: 1, appNames: ['api'] },
      server.url('other', 'other-pw', 'appdb'),
    );
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.appUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(4);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    const byPid = Object.fromEntries(action.results.map((r) => [r.pid, r]));
    expect(byPid[theirs.pids[0]!]).toMatchObject({ outcome: 'failed' });
    expect(byPid[theirs.pids[0]!]?.reason).toMatch(/permission/);
    for (const pid of mine.pids) expect(byPid[pid]?.outcome).toBe('terminated');
    expect(await alive(theirs.pids)).toEqual(theirs.pids);
  });
});

// mitigate's status and exit come from one place: the metrics step's own findings, judged by the
// healthOf diagnose and verify use. Exit 0 only when every action did what it said and the server
// is neither critical nor of unknown health afterwards.
describe('mitigate on PostgreSQL: the status it reports is the exit it gives', () => {
  // Critical from 40% on: a handful of held sessions make the server "full" without filling it.
  const lowCritical = ['--set', 'utilization_critical=40', '--set', 'utilization_warning=30'];

  it('a kill that leaves the server critical reports critical and exits 4, with the finding', async () => {
    const busy = await hold({ long: 45, appNames: ['batch'] });
    const idle = await hold({ idle: 3, appNames: ['api'] });
    await sleep(1200);
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      ...lowCritical,
      '--protect-app',
      'test-admin',
      '--yes',
      '--output',
      'json',
    ]);
    const report = JSON.parse(result.stdout) as Report & { findings: { id: string }[] };
    expect(report.actions[0]!.results.map((r) => r.outcome)).toEqual(Array(3).fill('terminated'));
    expect(await alive(idle.pids)).toEqual([]);
    expect(await alive(busy.pids)).toHaveLength(45);
    expect(report.status).toBe('critical');
    expect(report.findings.map((f) => f.id)).toContain('pool-critical');
    expect(result.code).toBe(4);

    // On screen: the same verdict, with the finding that stands.
    const human = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      ...lowCritical,
      '--yes',
    ]);
    expect(human.code).toBe(4);
    expect(human.stdout).toMatch(/✖ Still critical: Connections at [\d.]+% of usable slots/);
  });

  it('a manual action measures the server: healthy exits 0, critical exits 4 (never "unknown" with 0)', async () => {
    const quiet = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'restart-postgres',
      '--output',
      'json',
    ]);
    const calm = JSON.parse(quiet.stdout) as Report & { metrics: Record<string, number> };
    expect(calm.status).toBe('healthy');
    expect(calm.metrics.utilization_percent).toEqual(expect.any(Number));
    expect(quiet.code).toBe(0);

    await hold({ long: 45, appNames: ['batch'] });
    const full = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'restart-postgres',
      ...lowCritical,
      '--output',
      'json',
    ]);
    expect((JSON.parse(full.stdout) as Report).status).toBe('critical');
    expect(full.code).toBe(4);
  });

  it('a role that cannot see other sessions gets a manual action with status critical, exit 4', async () => {
    await hold({ idle: 3, appNames: ['api'] });
    const result = await runCli([
      'mitigate',
      '--pg',
      server.url('keeper', 'keeper-pw', 'appdb'),
      '--action',
      'restart-postgres',
      '--output',
      'json',
    ]);
    const report = JSON.parse(result.stdout) as Report & { findings: { id: string }[] };
    expect(report.findings.map((f) => f.id)).toContain('limited-view');
    expect(report.status).toBe('critical');
    expect(result.code).toBe(4);
  });
});
