import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../src/targets/connect.js';
import type { DatabaseTarget } from '../../src/targets/types.js';
import { sleep, sorted } from '../helpers/expect.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions } from '../helpers/mysql-sessions.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions } from '../helpers/sessions.js';

// The monitoring exporters' own sessions are spared by default (protect_apps_default, a runbook
// parameter the operator can change), on both engines: killing the exporter blinds the very
// dashboards that tell whether the mitigation worked.

// Whole seconds of idleness for a 1s threshold.
const AGE_MS = 1200;

interface Action {
  results: { pid: number; outcome: string }[];
  spared: { pid: number; reason: string }[];
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function killIdle(flag: '--pg' | '--mysql', url: string, ...extra: string[]) {
  return runCli([
    'mitigate',
    flag,
    url,
    '--action',
    'kill-idle',
    '--set',
    'kill_idle_after=1s',
    '--yes',
    '--output',
    'json',
    ...extra,
  ]).then((result) => {
    expect(result.stderr).not.toMatch(/internal error/);
    return (JSON.parse(result.stdout) as { actions: Action[] }).actions[0]!;
  });
}

/** The re-check at kill time, called directly with the exporter's session among the victims. */
async function recheckSpares(url: string, engine: 'postgres' | 'mysql', pid: number, sql: string) {
  const u = new URL(url);
  const target: DatabaseTarget = await connectDatabase({
    engine,
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: '',
    connectTimeoutMs: 5000,
    statementTimeoutMs: 10000,
    from: 'test',
  });
  try {
    const protection = {
      users: [],
      applications: [],
      defaultApplications: ['postgres_exporter', 'mysqld_exporter'],
      includeSuperusers: false,
    };
    const shown = (await target.candidates({ sql, params: [] })).filter((s) => s.pid === pid);
    expect(shown).toHaveLength(1);
    return await target.signal({ sql, params: [], mode: 'terminate', sessions: shown, protection });
  } finally {
    await target.close();
  }
}

const terminated = (action: Action) =>
  sorted(action.results.filter((r) => r.outcome === 'terminated').map((r) => r.pid));
const reasons = (action: Action) => Object.fromEntries(action.spared.map((s) => [s.pid, s.reason]));

describe('MariaDB with program names readable', () => {
  let server: MariaDBServer;
  beforeAll(async () => {
    server = await startMariaDB({ performanceSchema: true });
  });
  afterAll(async () => server?.stop());

  async function hold(name: string, sleeping: number) {
    const held = await holdMysqlSessions(server.appUrl, { sleep: sleeping, programNames: [name] });
    closers.push(held.close);
    return held.ids;
  }

  it('kill-idle spares mysqld_exporter by default, and kills it once the list is changed', async () => {
    const exporter = await hold('mysqld_exporter', 1);
    const api = await hold('api', 2);
    await sleep(AGE_MS);
    const first = await killIdle('--mysql', server.rootUrl);
    expect(terminated(first)).toEqual(sorted(api));
    expect(reasons(first)[exporter[0]!]).toBe(
      'monitoring "mysqld_exporter" (protect_apps_default)',
    );
    const second = await killIdle(
      '--mysql',
      server.rootUrl,
      '--set',
      'protect_apps_default=pgwatch',
    );
    expect(terminated(second)).toEqual(exporter);
  });

  it('the re-check at kill time spares it too', async () => {
    const exporter = await hold('mysqld_exporter', 1);
    const result = await recheckSpares(
      server.rootUrl,
      'mysql',
      exporter[0]!,
      `SELECT ID AS pid, CONCAT(USER, '@', HOST) AS session_token, USER AS user,
         COMMAND AS state, TIME AS in_state_s FROM information_schema.PROCESSLIST`,
    );
    expect(result.signalled).toEqual([]);
    expect(result.spared).toEqual([
      { pid: exporter[0], reason: 'monitoring "mysqld_exporter" (protect_apps_default)' },
    ]);
  });
});

describe('PostgreSQL', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => server?.stop());

  async function hold(name: string, idle: number) {
    const held = await holdSessions(server.appUrl, { idle, appNames: [name] });
    closers.push(held.close);
    return held.pids;
  }

  it('kill-idle spares postgres_exporter by default, and kills it once the list is changed', async () => {
    const exporter = await hold('postgres_exporter', 1);
    const api = await hold('api', 2);
    await sleep(AGE_MS);
    const first = await killIdle('--pg', server.superuserUrl);
    expect(terminated(first)).toEqual(sorted(api));
    expect(reasons(first)[exporter[0]!]).toBe(
      'monitoring "postgres_exporter" (protect_apps_default)',
    );
    const second = await killIdle(
      '--pg',
      server.superuserUrl,
      '--set',
      'protect_apps_default=pgwatch',
    );
    expect(terminated(second)).toEqual(exporter);
  });

  it('the re-check at kill time spares it too', async () => {
    const exporter = await hold('postgres_exporter', 1);
    const result = await recheckSpares(
      server.superuserUrl,
      'postgres',
      exporter[0]!,
      `SELECT pid, backend_start::text AS session_token, query_start::text AS query_token,
         usename AS user, application_name AS application, state, 0 AS in_state_s, query
       FROM pg_stat_activity WHERE backend_type = 'client backend'`,
    );
    expect(result.signalled).toEqual([]);
    expect(result.spared).toEqual([
      { pid: exporter[0], reason: 'monitoring "postgres_exporter" (protect_apps_default)' },
    ]);
  });
});
