import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseMitigateOptions, runMitigate } from '../../src/commands/mitigate.js';
import type { Choice, Prompter } from '../../src/io/prompter.js';
import { connectDatabase } from '../../src/targets/connect.js';
import { killInBatches } from '../../src/targets/mysql-kill.js';
import { multiStatementRunner } from '../../src/targets/mysql.js';
import type { DatabaseTarget, Session } from '../../src/targets/types.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { readEvents, sleep, sorted } from '../helpers/expect.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { runCli } from '../helpers/run-cli.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';

const KILL_ALL = 'test/fixtures/runbooks/mysql-kill-all/kill-all.yaml';
const KILL_ALL_SQL = 'test/fixtures/runbooks/mysql-kill-all/kill-all.sql';
// The process list counts whole seconds: a 1s threshold needs a full second of sleep.
const AGE_MS = 1200;

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

let server: MariaDBServer;
let admin: mysql.Connection;
const open: HeldMysqlSessions[] = [];
const clients: mysql.Connection[] = [];
const passwords = { keeper: 'keeper-pw', ops: 'ops-pw' };

async function hold(opts: Parameters<typeof holdMysqlSessions>[1], url = server.appUrl) {
  const held = await holdMysqlSessions(url, opts);
  open.push(held);
  return held;
}

async function client(url: string, programName: string, multipleStatements = false) {
  const c = await mysql.createConnection({
    uri: url,
    connectAttributes: { program_name: programName },
    multipleStatements,
  });
  c.on('error', () => {});
  clients.push(c);
  return { c, id: c.threadId };
}

/** Of these connection ids, those still in the process list (killed ones linger as `Killed`). */
async function alive(ids: number[]): Promise<number[]> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    'SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?)',
    [ids.length ? ids : [0]],
  );
  return sorted(rows.map((r) => Number(r.ID)));
}

async function processRow(id: number) {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    `SELECT ID, CONCAT(USER, '@', HOST) AS token, USER AS user, COMMAND AS command,
            CAST(UNIX_TIMESTAMP() - TIME AS CHAR) AS started, INFO AS info
       FROM information_schema.PROCESSLIST WHERE ID = ?`,
    [id],
  );
  return rows[0] as
    | { ID: number; token: string; user: string; command: string; started: string; info: string }
    | undefined;
}

async function waitFor(what: string, check: () => Promise<boolean>) {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function session(pid: number, sessionToken: string, extra: Partial<Session> = {}): Session {
  return {
    pid,
    sessionToken,
    queryToken: '',
    user: 'x',
    application: '',
    client: '',
    state: 'Sleep',
    inStateS: 0,
    query: '',
    superuser: false,
    ...extra,
  };
}

async function connectRoot(): Promise<DatabaseTarget> {
  const url = new URL(server.rootUrl);
  return connectDatabase({
    engine: 'mysql',
    host: server.host,
    port: server.port,
    user: 'root',
    password: decodeURIComponent(url.password),
    database: '',
    connectTimeoutMs: 5000,
    statementTimeoutMs: 10000,
    from: 'test',
  });
}

const deps = (prompter: Prompter, stateDir: string) =>
  inProcessDeps(prompter, { stateDir, argv: ['poolctl', 'mitigate'] });

function mitigate(args: string[]) {
  return runCli(['mitigate', '--mysql', server.rootUrl, ...args]);
}

beforeAll(async () => {
  // The event scheduler and a replica that cannot reach its source give the process list the
  // server's own threads: event_scheduler (Daemon) and two `system user` replication threads.
  server = await startMariaDB({
    // Room for the 250 long statements of the kill-long and cancel-long timing tests.
    maxConnections: 300,
    // --protect-app is proven here where program names are readable; tests/faults/mysql-*
    // prove it on stock settings.
    performanceSchema: true,
    settings: { event_scheduler: 'ON', 'server-id': '2' },
  });
  await server.sql(
    `CREATE USER keeper@'%' IDENTIFIED BY '${passwords.keeper}';
     GRANT ALL ON appdb.* TO keeper@'%';
     CREATE USER ops@'%' IDENTIFIED BY '${passwords.ops}';
     GRANT PROCESS ON *.* TO ops@'%';
     GRANT SELECT ON performance_schema.* TO ops@'%';
     CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 1, MASTER_USER = 'nobody',
       MASTER_CONNECT_RETRY = 3600;
     START SLAVE;`,
  );
  admin = await mysql.createConnection({
    uri: server.rootUrl,
    connectAttributes: { program_name: 'test-admin' },
  });
});

afterEach(async () => {
  while (open.length) await open.pop()!.close();
  while (clients.length) clients.pop()!.destroy();
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.stop();
});

describe('mitigate on MariaDB: the safety rules against a real server', () => {
  it('a kill-all selection spares poolctl, superusers, protected users and programs, and the server’s own threads', async () => {
    const victims = await hold({ sleep: 5, programNames: ['api'] });
    const superuser = await client(server.rootUrl, 'mysql');
    const protectedApp = await client(server.appUrl, 'migrations');
    const keeper = await client(server.url('keeper', passwords.keeper, 'appdb'), 'api');
    // A connection that never authenticates: `unauthenticated user`, Command Connect.
    const raw = net.connect(server.port, '127.0.0.1');
    raw.on('error', () => {});
    let unauthenticated = 0;
    await waitFor('the unauthenticated connection', async () => {
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'unauthenticated user'",
      );
      unauthenticated = Number(rows[0]?.ID ?? 0);
      return unauthenticated > 0;
    });
    const [threads] = await admin.query<mysql.RowDataPacket[]>(
      "SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST WHERE USER IN ('system user', 'event_scheduler')",
    );
    const serverThreads = threads.map((r) => Number(r.ID));
    expect(threads.map((r) => `${r.USER}/${r.COMMAND}`).sort()).toEqual([
      'event_scheduler/Daemon',
      'system user/Connect', // replica IO thread, retrying its source
      'system user/Slave_SQL',
    ]);

    try {
      const result = await mitigate([
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
      // Only the ordinary connections die (the test's own admin connection is root: spared).
      expect(sorted(terminated)).toEqual(sorted(victims.ids));
      expect(await alive(victims.ids)).toEqual([]);
      const survivors = [superuser.id, protectedApp.id, keeper.id, admin.threadId];
      expect(await alive(survivors)).toEqual(sorted(survivors));
      expect(await alive([...serverThreads, unauthenticated])).toEqual(
        sorted([...serverThreads, unauthenticated]),
      );
      const reasons = Object.fromEntries(action.spared.map((s) => [s.pid, s.reason]));
      expect(reasons[superuser.id]).toMatch(/superuser "root"/);
      expect(reasons[admin.threadId]).toMatch(/superuser "root"/);
      expect(reasons[protectedApp.id]).toMatch(/protected application "migrations"/);
      expect(reasons[keeper.id]).toMatch(/protected user "keeper"/);
      const shown = action.victims.map((v) => v.pid);
      for (const id of [...serverThreads, unauthenticated]) expect(shown).not.toContain(id);
    } finally {
      raw.destroy();
    }
  });

  it('the re-check itself refuses server threads, poolctl, a reused id, and says who is gone', async () => {
    const bystander = await client(server.appUrl, 'api');
    const target = await connectRoot();
    try {
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        `SELECT ID, CONCAT(USER, '@', HOST) AS token FROM information_schema.PROCESSLIST
          WHERE USER IN ('system user', 'event_scheduler') ORDER BY ID`,
      );
      const system = rows.map((r) => session(Number(r.ID), String(r.token)));
      expect(system).toHaveLength(3);
      const self = target.info.ownSessionId;
      const result = await target.signal({
        sql: readFileSync(KILL_ALL_SQL, 'utf8'),
        params: [],
        mode: 'terminate',
        protection: { users: [], applications: [], includeSuperusers: true },
        sessions: [
          ...system,
          session(self, (await processRow(self))!.token),
          // The bystander's id with another user@host:port: a new connection that reused the id.
          session(bystander.id, 'app@127.0.0.1:1'),
          session(999_999, 'app@127.0.0.1:2'),
        ],
      });
      expect(result.signalled).toEqual([]);
      expect(result.failed).toEqual([]);
      expect(result.gone).toEqual([999_999]);
      const reasons = Object.fromEntries(result.spared.map((s) => [s.pid, s.reason]));
      expect(reasons).toEqual({
        [system[0]!.pid]: expect.stringMatching(/^the server's own thread \(/),
        [system[1]!.pid]: expect.stringMatching(/^the server's own thread \(/),
        [system[2]!.pid]: expect.stringMatching(/^the server's own thread \(/),
        [self]: "poolctl's own connection",
        [bystander.id]: 'a new connection took over the id',
      });
      expect(Object.values(reasons)).toContain("the server's own thread (event_scheduler, Daemon)");
      const all = [...system.map((s) => s.pid), self, bystander.id];
      expect(await alive(all)).toEqual(sorted(all));
    } finally {
      await target.close();
    }
  });

  it('a victim that turns active between showing and killing is spared', async () => {
    const sessions = await Promise.all([1, 2, 3, 4].map(() => client(server.appUrl, 'api')));
    await sleep(AGE_MS);
    const [changing, ...others] = sessions as [(typeof sessions)[0], ...typeof sessions];
    let asked = '';
    // While the operator reads the table, one victim starts working.
    const prompter: Prompter = {
      async confirm(message) {
        asked = message;
        changing.c.query('SELECT SLEEP(2)').catch(() => {});
        await waitFor('the victim to turn active', async () => {
          return (await processRow(changing.id))?.command === 'Query';
        });
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
        mysql: server.rootUrl,
        action: ['kill-idle'],
        set: ['kill_idle_after=1s'],
      }),
      d,
    );
    expect(asked).toBe('Kill sleeping connections: terminate these 4 sessions?');
    expect(outcome.exitCode).toBe(0);
    expect(d.io.stdout()).toContain('Will terminate 4 sessions.');
    expect(d.io.stdout()).toMatch(/3 terminated · 1 spared/);
    expect(d.io.stdout()).toContain(`pid ${changing.id} spared: no longer matches: now Query`);
    expect(await alive([changing.id])).toEqual([changing.id]);
    expect(await alive(others.map((o) => o.id))).toEqual([]);
  });

  it('--max-victims caps one step, oldest first', async () => {
    const older = await hold({ sleep: 3, programNames: ['api'] });
    await sleep(1100);
    const newer = await hold({ sleep: 5, programNames: ['api'] });
    await sleep(AGE_MS);
    const result = await mitigate([
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--max-victims',
      '3',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    expect(sorted(action.victims.map((v) => v.pid))).toEqual(sorted(older.ids));
    expect(action.spared.filter((s) => s.reason === 'over --max-victims 3')).toHaveLength(5);
    expect(await alive(older.ids)).toEqual([]);
    expect(await alive(newer.ids)).toEqual(sorted(newer.ids));
  });

  it('above confirm_typed_over the operator types the count; a wrong count kills nothing (exit 5)', async () => {
    const held = await hold({ sleep: 25, programNames: ['worker'] });
    await sleep(AGE_MS);
    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-mitigate-'));
    const wrong = new ScriptedPrompter([
      { expect: 'Kill sleeping connections: terminate these 25', answer: '24' },
    ]);
    const options = parseMitigateOptions({
      mysql: server.rootUrl,
      action: ['kill-idle'],
      set: ['kill_idle_after=1s'],
      incident: 'typed-confirm',
    });
    const first = await runMitigate(options, deps(wrong, stateDir));
    wrong.verify();
    expect(first.exitCode).toBe(5);
    expect(await alive(held.ids)).toEqual(sorted(held.ids));

    const right = new ScriptedPrompter([
      { expect: 'Kill sleeping connections: terminate these 25', answer: '25' },
    ]);
    const second = await runMitigate(options, deps(right, stateDir));
    right.verify();
    expect(second.exitCode).toBe(0);
    expect(await alive(held.ids)).toEqual([]);

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
    expect(sorted(done.results.map((r) => r.pid))).toEqual(sorted(held.ids));
    expect(new Set(done.results.map((r) => r.outcome))).toEqual(new Set(['terminated']));
    expect(done.before.connections! - done.after.connections!).toBe(25);
    expect(events.filter((e) => e.type === 'session.end').map((e) => e.exitCode)).toEqual([5, 0]);
  });

  it('without a terminal and without --yes it kills nothing, says what it would do, exits 5', async () => {
    const held = await hold({ sleep: 3, programNames: ['api'] });
    await sleep(AGE_MS);
    const result = await mitigate([
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
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
    expect(await alive(held.ids)).toEqual(sorted(held.ids));
  });

  it('--dry-run never changes anything, even with --yes', async () => {
    const held = await hold({ sleep: 3, programNames: ['api'] });
    await sleep(AGE_MS);
    const result = await mitigate([
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--dry-run',
      '--yes',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--dry-run: would terminate 3 sessions; nothing was changed');
    expect(await alive(held.ids)).toEqual(sorted(held.ids));
  });

  it('with --yes the bundled runbook spares protected apps and users (names in another case), superusers and its own session', async () => {
    const victims = await hold({ sleep: 3, programNames: ['api'] });
    const superuser = await client(server.rootUrl, 'mysql');
    const protectedApp = await client(server.appUrl, 'migrations');
    const keeper = await client(server.url('keeper', passwords.keeper, 'appdb'), 'api');
    await sleep(AGE_MS);
    // Names given in another case: MySQL's own comparison ignores it, and so does the selection.
    const result = await mitigate([
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--protect-app',
      'Migrations',
      '--protect-user',
      'KEEPER',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    const terminated = action.results.filter((r) => r.outcome === 'terminated').map((r) => r.pid);
    expect(sorted(terminated)).toEqual(sorted(victims.ids));
    expect(await alive(victims.ids)).toEqual([]);
    const survivors = [superuser.id, protectedApp.id, keeper.id, admin.threadId];
    expect(await alive(survivors)).toEqual(sorted(survivors));
    const reasons = Object.fromEntries(action.spared.map((s) => [s.pid, s.reason]));
    expect(reasons[protectedApp.id]).toMatch(/protected application "migrations"/);
    expect(reasons[keeper.id]).toMatch(/protected user "keeper"/);
    expect(reasons[superuser.id]).toMatch(/superuser "root"/);
  });

  it('--yes kills sleeping connections and those asleep in a transaction, records --yes, shows before → after', async () => {
    const held = await hold({ sleep: 6, openTx: 2, programNames: ['api'] });
    await sleep(AGE_MS);
    const [trx] = await admin.query<mysql.RowDataPacket[]>(
      'SELECT trx_mysql_thread_id AS id FROM information_schema.INNODB_TRX',
    );
    expect(sorted(trx.map((r) => Number(r.id)))).toEqual(sorted(held.byKind.openTx));
    const result = await mitigate([
      '--action',
      'kill-idle',
      '--action',
      'kill-idle-in-tx',
      '--set',
      'kill_idle_after=1s',
      '--set',
      'idle_in_tx_after=1s',
      '--yes',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('6 terminated');
    expect(result.stdout).toContain('2 terminated');
    expect(result.stdout).toMatch(/Overall: Utilization [\d.]+% → [\d.]+% \(\d+ → \d+ connections/);
    expect(await alive(held.ids)).toEqual([]);
    // Their transactions rolled back with them. INNODB_TRX is a cache that InnoDB refreshes only
    // when nobody has read it for 0.1 s: poll it more slowly than that.
    for (let i = 0; ; i++) {
      await sleep(150);
      const [rows] = await admin.query<mysql.RowDataPacket[]>(
        'SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX',
      );
      if (Number(rows[0]!.n) === 0) break;
      if (i > 20) throw new Error('the transactions of the killed connections are still open');
    }
    const transcript = /Transcript: (.*\.jsonl)/.exec(result.stdout)![1]!;
    const events = readEvents(transcript);
    expect(events.filter((e) => e.type === 'prompt').every((e) => e.answeredBy === '--yes')).toBe(
      true,
    );
    const actions = events.filter((e) => e.type === 'action') as unknown as {
      id: string;
      outcomes: Record<string, number>;
      before: Record<string, number>;
      after: Record<string, number>;
    }[];
    expect(actions.map((a) => [a.id, a.outcomes])).toEqual([
      ['kill-idle', { terminated: 6 }],
      ['kill-idle-in-tx', { terminated: 2 }],
    ]);
    expect(actions[0]!.before.idle! - actions[0]!.after.idle!).toBe(6);
    expect(actions[1]!.before.idle_in_transaction! - actions[1]!.after.idle_in_transaction!).toBe(
      2,
    );
  });

  it('kill-long kills the connections whose statement runs too long', async () => {
    const held = await hold({ sleep: 1, long: 2, programNames: ['batch'] });
    await sleep(AGE_MS);
    const result = await mitigate([
      '--action',
      'kill-long',
      '--set',
      'kill_long_after=1s',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(0);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    expect(sorted(action.results.map((r) => r.pid))).toEqual(sorted(held.byKind.long));
    expect(action.results.map((r) => r.outcome)).toEqual(['terminated', 'terminated']);
    expect(await alive(held.ids)).toEqual(held.byKind.sleep);
  });

  it('cancel-long ends the statements and leaves the connections', async () => {
    const held = await hold({ long: 3, programNames: ['batch'] });
    await sleep(AGE_MS);
    const result = await mitigate([
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
    expect(await alive(held.ids)).toEqual(sorted(held.ids));
    for (const id of held.ids) expect((await processRow(id))?.command).toBe('Sleep');
  });

  // Every SLEEP() on MariaDB waits under one shared mutex: KILLs sent as one batch, or back to
  // back, can spin for seconds each (250 victims here: kill-long 14 s, cancel-long over 30 s). One at
  // a time, each after the previous victim's statement has ended, they take milliseconds.
  const VICTIMS = 250;
  it.each([
    ['kill-long', 'kill_long_after=1s', 'terminated'],
    ['cancel-long', 'cancel_long_after=1s', 'cancelled'],
  ])(
    '%s ends 250 SLEEP() statements in seconds, not minutes',
    async (action, setting, outcome) => {
      const held = await hold({ long: VICTIMS, programNames: ['batch'] });
      await sleep(AGE_MS);
      const started = Date.now();
      const result = await mitigate([
        '--action',
        action,
        '--set',
        setting,
        '--yes',
        '--output',
        'json',
      ]);
      const tookMs = Date.now() - started;
      expect(result.code).toBe(0);
      const results = (JSON.parse(result.stdout) as Report).actions[0]!.results;
      expect(sorted(results.map((r) => r.pid))).toEqual(sorted(held.byKind.long));
      expect(results.filter((r) => r.outcome !== outcome)).toEqual([]);
      expect(tookMs).toBeLessThan(10_000);
      if (action === 'kill-long') expect(await alive(held.ids)).toEqual([]);
      else expect(await alive(held.ids)).toEqual(sorted(held.ids));
    },
    60_000,
  );

  it('a cancel ends when its statement does, even if the connection starts the next one at once', async () => {
    const victim = await client(server.appUrl, 'batch');
    const running = victim.c.query('SELECT SLEEP(3600)').catch((e: { errno?: number }) => e);
    await waitFor('the statement', async () => (await processRow(victim.id))?.command === 'Query');
    const shown = (await processRow(victim.id))!;
    const target = await connectRoot();
    try {
      const result = await target.signal({
        sql: readFileSync(KILL_ALL_SQL, 'utf8'),
        params: [],
        mode: 'cancel',
        protection: { users: [], applications: [], includeSuperusers: false },
        sessions: [
          session(victim.id, shown.token, {
            queryToken: shown.started,
            state: 'Query',
            user: 'app',
          }),
        ],
      });
      expect(result.signalled).toEqual([victim.id]);
      expect(((await running) as { errno?: number }).errno).toBe(1317); // query interrupted
      // The application retries at once: a new statement on the same connection, started within
      // a second of the cancelled one. MariaDB's QUERY_ID tells them apart.
      victim.c.query('SELECT SLEEP(5)').catch(() => {});
      await waitFor('the next statement', async () => {
        const row = await processRow(victim.id);
        return row?.command === 'Query' && row.info === 'SELECT SLEEP(5)';
      });
      const still = await target.stillThere(
        [session(victim.id, shown.token, { queryToken: shown.started, state: 'Query' })],
        'cancel',
      );
      expect(still.size).toBe(0);
      expect(await target.stillThere([session(victim.id, shown.token)], 'terminate')).toEqual(
        new Set([victim.id]),
      );
    } finally {
      await target.close();
    }
  });

  it('a cancel spares a connection that has moved on to another statement', async () => {
    const victim = await client(server.appUrl, 'batch');
    victim.c.query('SELECT SLEEP(3600)').catch(() => {});
    await waitFor('the statement', async () => (await processRow(victim.id))?.command === 'Query');
    const shown = (await processRow(victim.id))!;
    const target = await connectRoot();
    try {
      const result = await target.signal({
        sql: readFileSync(KILL_ALL_SQL, 'utf8'),
        params: [],
        mode: 'cancel',
        protection: { users: [], applications: [], includeSuperusers: false },
        sessions: [
          // Shown running a statement that started a minute earlier than the one running now.
          session(victim.id, shown.token, {
            queryToken: String(Number(shown.started) - 60),
            state: 'Query',
          }),
        ],
      });
      expect(result.signalled).toEqual([]);
      expect(result.spared).toEqual([
        { pid: victim.id, reason: 'no longer matches: now running another statement' },
      ]);
      expect((await processRow(victim.id))?.command).toBe('Query');
    } finally {
      await target.close();
    }
  });

  it('--pid kills exactly that connection; --pid --cancel only its statement', async () => {
    const held = await hold({ sleep: 2, long: 1, programNames: ['api'] });
    const [victim, bystander] = held.byKind.sleep as [number, number];
    const long = held.byKind.long[0]!;
    const killed = await mitigate(['--pid', String(victim), '--yes']);
    expect(killed.code).toBe(0);
    expect(await alive([victim, bystander])).toEqual([bystander]);

    const cancelled = await mitigate(['--pid', String(long), '--cancel', '--yes']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain('1 cancelled');
    expect((await processRow(long))?.command).toBe('Sleep');
  });

  // `ops` has PROCESS (sees every connection) but neither CONNECTION ADMIN nor SUPER: it may kill
  // its own account's connections only, and the server refuses the rest with error 1095.
  it('a victim poolctl may not kill fails alone; the others are still killed (exit 4)', async () => {
    const opsUrl = server.url('ops', passwords.ops);
    const mine = await hold({ sleep: 2, programNames: ['api'] }, opsUrl);
    const theirs = await hold({ sleep: 1, programNames: ['api'] });
    const more = await hold({ sleep: 2, programNames: ['api'] }, opsUrl);
    await sleep(AGE_MS);
    const result = await runCli([
      'mitigate',
      '--mysql',
      opsUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      // The test's own root connection is asleep too; ops cannot see that root is a superuser.
      '--protect-user',
      'root',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.code).toBe(4);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    const byPid = Object.fromEntries(action.results.map((r) => [r.pid, r]));
    expect(byPid[theirs.ids[0]!]).toMatchObject({ outcome: 'failed' });
    expect(byPid[theirs.ids[0]!]?.reason).toMatch(
      /permission denied \(error 1095: .*CONNECTION ADMIN/,
    );
    for (const id of [...mine.ids, ...more.ids]) expect(byPid[id]?.outcome).toBe('terminated');
    expect(await alive(theirs.ids)).toEqual(theirs.ids);
    expect(await alive([...mine.ids, ...more.ids])).toEqual([]);
  });

  it('a KILL batch that stops at a vanished or foreign victim goes on with the rest', async () => {
    const opsUrl = server.url('ops', passwords.ops);
    const mine = await hold({ sleep: 4, programNames: ['api'] }, opsUrl);
    const theirs = await hold({ sleep: 1, programNames: ['api'] });
    const vanished = await client(opsUrl, 'api');
    vanished.c.destroy();
    await waitFor('the vanished connection', async () => (await alive([vanished.id])).length === 0);
    const ops = await client(opsUrl, 'poolctl', true);
    const [a, b, c, d] = mine.ids as [number, number, number, number];
    const outcome = await killInBatches(
      multiStatementRunner(ops.c),
      [a, vanished.id, b, theirs.ids[0]!, c, d],
      'terminate',
    );
    expect(outcome.killed).toEqual([a, b, c, d]);
    expect(outcome.gone).toEqual([vanished.id]);
    expect(outcome.failed).toEqual([
      { pid: theirs.ids[0], reason: expect.stringMatching(/^permission denied \(error 1095/) },
    ]);
    await waitFor('the victims to go', async () => (await alive(mine.ids)).length === 0);
    expect(await alive(theirs.ids)).toEqual(theirs.ids);
  });
});
