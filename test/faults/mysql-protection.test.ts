import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDiagnoseOptions, runDiagnose } from '../../src/commands/diagnose.js';
import { connectDatabase } from '../../src/targets/connect.js';
import type { DatabaseTarget, Session } from '../../src/targets/types.js';
import { sleep, sorted } from '../helpers/expect.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { runCli } from '../helpers/run-cli.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';

// Protection that cannot silently fail, on a STOCK MariaDB (performance_schema OFF, as it ships)
// and with the least-privileged accounts the README documents (test/helpers/mariadb-server.ts
// ACCOUNT_GRANTS): `oncall` (PROCESS, CONNECTION ADMIN, SUPER; nothing on performance_schema or
// mysql), `oncall_reads_grants` (the same + SELECT ON mysql.*), `process_only` (PROCESS alone).
// Every kill runs against a real superuser's session (root) and the killer's own other session.

// The process list counts whole seconds: a 1s threshold needs a full second of sleep.
const AGE_MS = 1200;

interface Report {
  status: string;
  findings: { id: string; message: string }[];
  actions: {
    id: string;
    victims: { pid: number }[];
    results: { pid: number; outcome: string; reason?: string }[];
    spared: { pid: number; reason: string }[];
  }[];
  error?: { code: string; message: string };
}

let server: MariaDBServer;
let admin: mysql.Connection;
const urls = { oncall: '', readsGrants: '', processOnly: '' };
const open: HeldMysqlSessions[] = [];

async function hold(url: string, programName: string, sleeping = 1) {
  const held = await holdMysqlSessions(url, { sleep: sleeping, programNames: [programName] });
  open.push(held);
  return held.ids;
}

/** Of these connection ids, those still in the process list. */
async function alive(ids: number[]): Promise<number[]> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    'SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?)',
    [ids.length ? ids : [0]],
  );
  return sorted(rows.map((r) => Number(r.ID)));
}

/** `mitigate --action kill-idle` as `url`, with a 1s threshold, JSON out. */
async function killIdle(url: string, ...extra: string[]) {
  const result = await runCli([
    'mitigate',
    '--mysql',
    url,
    '--action',
    'kill-idle',
    '--set',
    'kill_idle_after=1s',
    '--output',
    'json',
    ...extra,
  ]);
  expect(result.stderr).not.toMatch(/internal error/);
  const report = JSON.parse(result.stdout) as Report;
  const action = report.actions[0]!;
  return {
    code: result.code,
    report,
    action,
    spared: Object.fromEntries(action.spared.map((s) => [s.pid, s.reason])),
    outcomes: Object.fromEntries(action.results.map((r) => [r.pid, r])),
  };
}

beforeAll(async () => {
  server = await startMariaDB({ maxConnections: 60 });
  urls.oncall = await server.createAccount('oncall');
  urls.readsGrants = await server.createAccount('oncall-reads-grants');
  urls.processOnly = await server.createAccount('process-only');
  admin = await mysql.createConnection(server.rootUrl);
});

afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.stop();
});

describe('stock MariaDB (performance_schema OFF): protection that cannot silently fail', () => {
  it('rig: the server is stock and the accounts are exactly the documented ones', async () => {
    expect((await server.sql('SELECT @@performance_schema;')).trim()).toBe('0');
    const grants = await server.sql(
      "SHOW GRANTS FOR oncall@'%'; SHOW GRANTS FOR oncall_reads_grants@'%'; SHOW GRANTS FOR process_only@'%';",
    );
    expect(grants).toMatch(/GRANT PROCESS, SUPER, CONNECTION ADMIN ON \*\.\* TO `oncall`@`%`/);
    expect(grants).toMatch(/GRANT SELECT ON `mysql`\.\* TO `oncall_reads_grants`@`%`/);
    expect(grants).toMatch(/GRANT PROCESS ON \*\.\* TO `process_only`@`%`/);
    expect(grants).not.toMatch(/performance_schema/);
  });

  it('--protect-app spares every session whose application cannot be read, naming cause and fix (root)', async () => {
    const api = await hold(server.appUrl, 'api', 3);
    await sleep(AGE_MS);
    const run = await killIdle(server.rootUrl, '--protect-app', 'api', '--yes');
    expect(await alive(api)).toEqual(sorted(api));
    for (const id of api) {
      expect(run.spared[id]).toMatch(
        /application unknown: performance_schema is OFF \(MariaDB's default\).*performance_schema=ON.*--protect-app api cannot be checked/,
      );
    }
    expect(run.action.victims.filter((v) => api.includes(v.pid))).toEqual([]);
  });

  it('on-call account without grant reads (a): no internal error; spares root, its own other session, --protect-app and unknown accounts', async () => {
    const api = await hold(server.appUrl, 'api', 2);
    const root = await hold(server.rootUrl, 'mysql');
    const own = await hold(urls.oncall, 'mysql');
    await sleep(AGE_MS);
    for (const extra of [['--dry-run'], ['--yes'], ['--yes', '--protect-app', 'api']]) {
      const run = await killIdle(urls.oncall, ...extra);
      expect(run.code, extra.join(' ')).not.toBe(1);
      expect(run.report.error).toBeUndefined();
      expect(await alive([...api, ...root, ...own])).toEqual(sorted([...api, ...root, ...own]));
      // An explicit --protect-app that cannot be checked spares first; else the superuser rules.
      const protectsApp = extra.includes('--protect-app');
      expect(run.spared[root[0]!]).toMatch(
        protectsApp
          ? /--protect-app api cannot be checked/
          : /superuser status unknown: .*GRANT SELECT ON mysql\.\* TO 'oncall'@'%'.*--include-superusers/,
      );
      expect(run.spared[own[0]!]).toMatch(
        protectsApp ? /--protect-app api cannot be checked/ : /superuser "oncall"/,
      );
      for (const id of api)
        expect(run.spared[id]).toMatch(/superuser status unknown|--protect-app/);
    }
  });

  it('on-call account that reads grants (b): kill-idle --yes kills exactly the application’s idle sessions', async () => {
    const api = await hold(server.appUrl, 'api', 3);
    const root = await hold(server.rootUrl, 'mysql');
    const own = await hold(urls.readsGrants, 'mysql');
    await sleep(AGE_MS);
    const run = await killIdle(urls.readsGrants, '--yes');
    expect(run.code).not.toBe(1);
    const terminated = run.action.results.filter((r) => r.outcome === 'terminated');
    expect(sorted(terminated.map((r) => r.pid))).toEqual(sorted(api));
    expect(await alive(api)).toEqual([]);
    expect(await alive([...root, ...own])).toEqual(sorted([...root, ...own]));
    expect(run.spared[root[0]!]).toMatch(/superuser "root"/);
    expect(run.spared[own[0]!]).toMatch(/superuser "oncall_reads_grants"/);
  });

  it('on-call account (a) in the wizard after diagnose: the offered kill spares what it cannot classify', async () => {
    const api = await hold(server.appUrl, 'api', 2);
    const root = await hold(server.rootUrl, 'mysql');
    await sleep(AGE_MS);
    const prompter = new ScriptedPrompter([
      { expect: 'Which mitigation?', answer: 'kill-idle' },
      { expect: 'Next?', answer: 'done' },
    ]);
    const deps = inProcessDeps(prompter, {
      stateDir: mkdtempSync(join(tmpdir(), 'poolctl-protect-')),
      argv: ['poolctl', 'diagnose'],
    });
    await runDiagnose(
      parseDiagnoseOptions({
        mysql: urls.oncall,
        set: ['leak_idle_after=1s', 'kill_idle_after=1s'],
      }),
      deps,
    );
    prompter.verify();
    expect(deps.io.stderr() + deps.io.stdout()).not.toMatch(/internal error|session_connect_attrs/);
    expect(await alive([...api, ...root])).toEqual(sorted([...api, ...root]));
  });

  it('PROCESS alone (c): never an internal error; each KILL fails with the GRANT that fixes it', async () => {
    const api = await hold(server.appUrl, 'api', 2);
    const root = await hold(server.rootUrl, 'mysql');
    // Its own account's other session: known not to be a superuser's, and its own to kill.
    const own = await hold(urls.processOnly, 'mysql');
    await sleep(AGE_MS);
    const run = await killIdle(urls.processOnly, '--yes');
    expect(run.code).toBe(4);
    expect(run.outcomes[own[0]!]).toMatchObject({ outcome: 'terminated' });
    for (const id of [...api, ...root]) {
      expect(run.outcomes[id]).toMatchObject({
        outcome: 'failed',
        reason: expect.stringMatching(/error 1095.*GRANT CONNECTION ADMIN ON \*\.\* TO/),
      });
    }
    expect(await alive([...api, ...root])).toEqual(sorted([...api, ...root]));
  });

  it.each(['oncall', 'processOnly'] as const)(
    'diagnose as %s names unreadable application names once; only lock-waits fails, naming its GRANT',
    async (key) => {
      await hold(server.appUrl, 'api', 2);
      const result = await runCli(['diagnose', '--mysql', urls[key], '--output', 'json']);
      expect(result.stderr).not.toMatch(/internal error/);
      const report = JSON.parse(result.stdout) as Report & {
        steps: { id: string; status: string }[];
      };
      expect(report.steps.find((s) => s.id === 'holders')?.status).toBe('ok');
      const named = report.findings.filter((f) =>
        /Application names are not readable/.test(f.message),
      );
      expect(named).toHaveLength(1);
      expect(named[0]!.message).toMatch(/performance_schema is OFF.*performance_schema=ON/);
      // Without SELECT on sys the lock-waits step alone fails, naming the GRANT that fixes it.
      expect(report.steps.find((s) => s.id === 'lock-waits')?.status).toBe('failed');
      const lockWaits = report.findings.find((f) => f.id === 'step-failed');
      expect(lockWaits?.message).toMatch(/GRANT SELECT ON `sys`\.\* TO '\w+'@'[^']+' lets poolctl/);
    },
  );
});

describe('the re-check at kill time applies the same rules (on-call account (a), root in the victim set)', () => {
  let target: DatabaseTarget;
  beforeAll(async () => {
    const url = new URL(urls.oncall);
    target = await connectDatabase({
      engine: 'mysql',
      host: server.host,
      port: server.port,
      user: 'oncall',
      password: decodeURIComponent(url.password),
      database: '',
      connectTimeoutMs: 5000,
      statementTimeoutMs: 10000,
      from: 'test',
    });
  });
  afterAll(async () => target?.close());

  const KILL_IDLE_SQL = `SELECT p.ID AS pid, CONCAT(p.USER, '@', p.HOST) AS session_token,
    p.USER AS user, p.COMMAND AS state, p.TIME AS in_state_s FROM information_schema.PROCESSLIST p WHERE p.COMMAND = 'Sleep'`;

  /** Sessions as shown, marked as if the selection had let them through. */
  async function shown(ids: number[]): Promise<Session[]> {
    const all = await target.candidates({ sql: KILL_IDLE_SQL, params: [] });
    return all
      .filter((s) => ids.includes(s.pid))
      .map((s) => ({ ...s, superuser: false, superuserUnknown: undefined }));
  }

  it("spares root's session and its own other session even when they reach the kill", async () => {
    const root = await hold(server.rootUrl, 'mysql');
    const own = await hold(urls.oncall, 'mysql');
    const sessions = await shown([...root, ...own]);
    expect(sessions).toHaveLength(2);
    const result = await target.signal({
      sql: KILL_IDLE_SQL,
      params: [],
      mode: 'terminate',
      sessions,
      protection: { users: [], applications: [], includeSuperusers: false },
    });
    expect(result.signalled).toEqual([]);
    expect(Object.fromEntries(result.spared.map((s) => [s.pid, s.reason]))).toEqual({
      [root[0]!]: expect.stringMatching(/superuser status unknown/),
      [own[0]!]: 'superuser "oncall" (--include-superusers to include)',
    });
    expect(await alive([...root, ...own])).toEqual(sorted([...root, ...own]));
  });

  it('spares a session whose application cannot be read when --protect-app is given', async () => {
    const api = await hold(server.appUrl, 'api');
    const sessions = await shown(api);
    const result = await target.signal({
      sql: KILL_IDLE_SQL,
      params: [],
      mode: 'terminate',
      sessions,
      protection: { users: [], applications: ['api'], includeSuperusers: true },
    });
    expect(result.signalled).toEqual([]);
    expect(result.spared).toEqual([
      {
        pid: api[0],
        reason: expect.stringMatching(/^application unknown: performance_schema is OFF/),
      },
    ]);
    expect(await alive(api)).toEqual(api);
  });
});

describe('performance_schema ON, on-call account (a) + GRANT SELECT ON performance_schema.session_connect_attrs', () => {
  let psServer: MariaDBServer;
  let url: string;
  beforeAll(async () => {
    psServer = await startMariaDB({ performanceSchema: true });
    url = await psServer.createAccount('oncall');
    await psServer.sql("GRANT SELECT ON performance_schema.session_connect_attrs TO oncall@'%';");
  });
  afterAll(async () => psServer?.stop());

  it('that one table grant makes --protect-app work by name; unknown superuser status still spares', async () => {
    const api = await holdMysqlSessions(psServer.appUrl, { sleep: 1, programNames: ['api'] });
    const root = await holdMysqlSessions(psServer.rootUrl, { sleep: 1, programNames: ['mysql'] });
    open.push(api, root);
    await sleep(AGE_MS);
    const result = await runCli([
      'mitigate',
      '--mysql',
      url,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--protect-app',
      'api',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.stderr).not.toMatch(/internal error/);
    const action = (JSON.parse(result.stdout) as Report).actions[0]!;
    const reasons = Object.fromEntries(action.spared.map((x) => [x.pid, x.reason]));
    expect(reasons[api.ids[0]!]).toBe('protected application "api" (--protect-app)');
    expect(reasons[root.ids[0]!]).toMatch(/^superuser status unknown/);
    expect(action.results.filter((r) => r.outcome === 'terminated')).toEqual([]);
    const stillThere = await psServer.sql(
      `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (${api.ids[0]}, ${root.ids[0]});`,
    );
    expect(stillThere.trim()).toBe('2');
    const diagnosis = await runCli(['diagnose', '--mysql', url, '--output', 'json']);
    const report = JSON.parse(diagnosis.stdout) as Report & {
      steps: { id: string; rows?: { application: string }[] }[];
    };
    expect(report.steps.find((s) => s.id === 'holders')?.rows?.map((r) => r.application)).toContain(
      'api',
    );
    expect(
      report.findings.filter((f) => /Application names are not readable/.test(f.message)),
    ).toEqual([]);
  });
});
