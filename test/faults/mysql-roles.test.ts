import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../src/targets/connect.js';
import type { DatabaseTarget } from '../../src/targets/types.js';
import { sleep, sorted } from '../helpers/expect.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { runCli } from '../helpers/run-cli.js';

// Superusers through ROLES, on a stock MariaDB (performance_schema OFF). USER_PRIVILEGES shows
// only direct grants (MariaDB lists no role there at all), so an account that gets SUPER /
// CONNECTION ADMIN from a (default) role looks like an ordinary one. Neither the on-call account
// that kills through a role nor a superuser-through-role victim may lead poolctl to a kill.

// The process list counts whole seconds: a 1s threshold needs a full second of sleep.
const AGE_MS = 1200;
const PASSWORD = 'role-test-pw';

interface Report {
  actions: {
    results: { pid: number; outcome: string; reason?: string }[];
    spared: { pid: number; reason: string }[];
  }[];
}

let server: MariaDBServer;
let admin: mysql.Connection;
const open: HeldMysqlSessions[] = [];
const urls = { killsThroughRole: '', killsThroughRoleReadsGrants: '', superThroughRole: '' };

async function hold(url: string) {
  const held = await holdMysqlSessions(url, { sleep: 1, programNames: ['mysql'] });
  open.push(held);
  return held.ids;
}

async function alive(ids: number[]): Promise<number[]> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(
    'SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (?)',
    [ids.length ? ids : [0]],
  );
  return sorted(rows.map((r) => Number(r.ID)));
}

async function killIdle(url: string) {
  const result = await runCli([
    'mitigate',
    '--mysql',
    url,
    '--action',
    'kill-idle',
    '--set',
    'kill_idle_after=1s',
    '--yes',
    '--output',
    'json',
  ]);
  expect(result.stderr).not.toMatch(/internal error/);
  const action = (JSON.parse(result.stdout) as Report).actions[0]!;
  return {
    spared: Object.fromEntries(action.spared.map((s) => [s.pid, s.reason])),
    outcomes: Object.fromEntries(action.results.map((r) => [r.pid, r.outcome])),
  };
}

beforeAll(async () => {
  server = await startMariaDB({ maxConnections: 60 });
  // `killer` holds the KILL privileges; `outer_role` holds `killer` (a role granted to a role).
  await server.sql(`
    CREATE ROLE killer;
    GRANT SUPER, CONNECTION ADMIN ON *.* TO killer;
    CREATE ROLE outer_role;
    GRANT killer TO outer_role;
    CREATE USER kills_through_role@'%' IDENTIFIED BY '${PASSWORD}';
    GRANT PROCESS ON *.* TO kills_through_role@'%';
    GRANT killer TO kills_through_role@'%';
    SET DEFAULT ROLE killer FOR kills_through_role@'%';
    CREATE USER kills_through_role_rg@'%' IDENTIFIED BY '${PASSWORD}';
    GRANT PROCESS ON *.* TO kills_through_role_rg@'%';
    GRANT SELECT ON mysql.* TO kills_through_role_rg@'%';
    GRANT killer TO kills_through_role_rg@'%';
    SET DEFAULT ROLE killer FOR kills_through_role_rg@'%';
    CREATE USER super_through_role@'%' IDENTIFIED BY '${PASSWORD}';
    GRANT outer_role TO super_through_role@'%';
    SET DEFAULT ROLE outer_role FOR super_through_role@'%';
  `);
  urls.killsThroughRole = server.url('kills_through_role', PASSWORD);
  urls.killsThroughRoleReadsGrants = server.url('kills_through_role_rg', PASSWORD);
  urls.superThroughRole = server.url('super_through_role', PASSWORD);
  admin = await mysql.createConnection(server.rootUrl);
});

afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.stop();
});

describe('superusers through roles (stock MariaDB)', () => {
  it('rig: the on-call account may KILL anyone only through its default role', async () => {
    const conn = await mysql.createConnection(urls.killsThroughRole);
    try {
      const [direct] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
          WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN')`,
      );
      expect(direct).toEqual([]);
      const [role] = await conn.query<mysql.RowDataPacket[]>('SELECT CURRENT_ROLE() AS r');
      expect(role[0]!.r).toBe('killer');
    } finally {
      await conn.end();
    }
  });

  it("an on-call account that kills through a role spares root's session (grants unreadable)", async () => {
    const root = await hold(server.rootUrl);
    const app = await hold(server.appUrl);
    await sleep(AGE_MS);
    const run = await killIdle(urls.killsThroughRole);
    expect(await alive(root)).toEqual(root);
    expect(run.spared[root[0]!]).toMatch(/superuser status unknown/);
    // Unknown for every other account as well: spared, not killed on a guess.
    expect(run.spared[app[0]!]).toMatch(/superuser status unknown/);
    expect(await alive(app)).toEqual(app);
  });

  it("a superuser-through-role account's session is spared; the application's is killed (SELECT ON mysql.*)", async () => {
    const root = await hold(server.rootUrl);
    const viaRole = await hold(urls.superThroughRole);
    const own = await hold(urls.killsThroughRoleReadsGrants);
    const app = await hold(server.appUrl);
    await sleep(AGE_MS);
    const run = await killIdle(urls.killsThroughRoleReadsGrants);
    expect(run.spared[viaRole[0]!]).toBe(
      'superuser "super_through_role" (--include-superusers to include)',
    );
    expect(run.spared[own[0]!]).toBe(
      'superuser "kills_through_role_rg" (--include-superusers to include)',
    );
    expect(run.spared[root[0]!]).toMatch(/superuser "root"/);
    expect(run.outcomes[app[0]!]).toBe('terminated');
    expect(await alive([...root, ...viaRole, ...own])).toEqual(
      sorted([...root, ...viaRole, ...own]),
    );
    expect(await alive(app)).toEqual([]);
  });

  it('the re-check at kill time spares them too, when shown as killable', async () => {
    const url = new URL(urls.killsThroughRole);
    const target: DatabaseTarget = await connectDatabase({
      engine: 'mysql',
      host: server.host,
      port: server.port,
      user: url.username,
      password: PASSWORD,
      database: '',
      connectTimeoutMs: 5000,
      statementTimeoutMs: 10000,
      from: 'test',
    });
    try {
      const root = await hold(server.rootUrl);
      const viaRole = await hold(urls.superThroughRole);
      const sql = `SELECT p.ID AS pid, CONCAT(p.USER, '@', p.HOST) AS session_token,
        p.USER AS user, p.COMMAND AS state, p.TIME AS in_state_s
        FROM information_schema.PROCESSLIST p WHERE p.COMMAND = 'Sleep'`;
      const sessions = (await target.candidates({ sql, params: [] }))
        .filter((s) => [...root, ...viaRole].includes(s.pid))
        .map((s) => ({ ...s, superuser: false, superuserUnknown: undefined }));
      expect(sessions).toHaveLength(2);
      const result = await target.signal({
        sql,
        params: [],
        mode: 'terminate',
        sessions,
        protection: { users: [], applications: [], includeSuperusers: false },
      });
      expect(result.signalled).toEqual([]);
      expect(result.spared.map((s) => s.reason)).toEqual([
        expect.stringMatching(/superuser status unknown/),
        expect.stringMatching(/superuser status unknown/),
      ]);
      expect(await alive([...root, ...viaRole])).toEqual(sorted([...root, ...viaRole]));
    } finally {
      await target.close();
    }
  });
});
