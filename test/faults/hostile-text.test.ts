import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';

// Fault suite: the server's text is the attacker's. Sessions whose query text, application_name
// and user name hold terminal escape sequences (colour, screen clear, window title, OSC 8 link),
// bare carriage returns, Markdown and HTML, and a 1 MB query: the screen gets no raw control
// character, the JSON stays one valid document, the exports stay intact and bounded.

const ESC = '\u001b';
const HOSTILE =
  `${ESC}[2J${ESC}[31mred${ESC}[0m ${ESC}]0;pwned-title\u0007 ` +
  `${ESC}]8;;https://evil.example/\u0007link${ESC}]8;;\u0007 \u009b31m c1-csi ` +
  `\rOVERWRITE\n# injected heading\n| injected | row |\n</code></pre><script>alert(1)</script>`;
// C0 controls but tab and line feed, DEL, C1 controls.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
const MB = 1024 * 1024;

/** diagnose on screen, as JSON, and the run's Markdown and HTML exports, all checked. */
async function expectCleanEverywhere(flag: string, url: string, sets: string[]) {
  const screen = await runCli(['diagnose', flag, url, ...sets]);
  expect([0, 4], screen.stderr).toContain(screen.code);
  expect(screen.stdout).toMatch(/pg_sleep|SLEEP\(3600\)/);
  expect(screen.stdout).not.toMatch(RAW_CONTROL);
  expect(screen.stderr).not.toMatch(RAW_CONTROL);
  expect(screen.stdout).not.toMatch(/^# injected heading/m);

  const json = await runCli(['diagnose', '--output', 'json', flag, url, ...sets]);
  expect([0, 4], json.stderr).toContain(json.code);
  const lines = json.stdout.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(JSON.stringify(JSON.parse(lines[0]!))).not.toMatch(/\\u001b|\\u009b|\\u0007|\\r/);

  const dir = join(screen.stateDir, 'poolctl', 'incidents');
  const [file] = readdirSync(dir);
  for (const format of ['md', 'html']) {
    const exported = await runCli(['transcript', 'export', join(dir, file!), '--format', format]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).not.toMatch(RAW_CONTROL);
    // HTML escapes the server's text; Markdown keeps it inside code spans, where it is text.
    const outsideCode =
      format === 'md' ? exported.stdout.replace(/`[^`\n]*`/g, '') : exported.stdout;
    expect(outsideCode).not.toContain('<script>alert(1)</script>');
    expect(outsideCode).not.toMatch(/^# injected heading|^\| injected \| row \|/m);
    expect(exported.stdout.length, `${format} export`).toBeLessThan(MB / 4);
  }
}

describe('hostile server text', () => {
  let pgServer: PgServer;
  let mariadb: MariaDBServer;
  const pgClients: pg.Client[] = [];
  const mysqlConns: mysql.Connection[] = [];

  beforeAll(async () => {
    // pg_stat_activity keeps the first track_activity_query_size bytes of a query: all of 1 MB.
    [pgServer, mariadb] = await Promise.all([
      startPostgres({ settings: { track_activity_query_size: '1048576' } }),
      startMariaDB(),
    ]);

    const evilUser = `evil${ESC}[31muser`;
    const quoted = `"${evilUser.replaceAll('"', '""')}"`;
    await pgServer.psql(`CREATE ROLE ${quoted} LOGIN PASSWORD 'evil-pw';`);
    const u = new URL(pgServer.appUrl);
    const connect = async (user: string, password: string, app: string) => {
      const c = new pg.Client({
        host: u.hostname,
        port: Number(u.port),
        user,
        password,
        database: 'appdb',
        application_name: app,
      });
      c.on('error', () => undefined);
      await c.connect();
      pgClients.push(c);
      return c;
    };
    const appPassword = decodeURIComponent(u.password);
    const long = await connect('app', appPassword, `app${ESC}[31m\nname`);
    void long.query(`SELECT pg_sleep(3600) /* ${HOSTILE} */`).catch(() => undefined);
    const huge = await connect('app', appPassword, 'huge');
    void huge
      .query(`SELECT pg_sleep(3600) /* ${HOSTILE} ${'x'.repeat(MB)} */`)
      .catch(() => undefined);
    // An idle session of a user named with an escape sequence, its last query hostile.
    const idle = await connect(evilUser, 'evil-pw', 'idle');
    await idle.query(`SELECT 1 /* ${HOSTILE} */`);

    for (const [name, query] of [
      [`app${ESC}[31m\nname`, `SELECT SLEEP(3600) /* ${HOSTILE} */`],
      ['huge', `SELECT SLEEP(3600) /* ${HOSTILE} ${'x'.repeat(MB)} */`],
    ] as const) {
      const c = await mysql.createConnection({
        uri: mariadb.appUrl,
        connectAttributes: { program_name: name },
      });
      c.on('error', () => undefined);
      mysqlConns.push(c);
      void c.query(query).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1500));
  });
  afterAll(async () => {
    for (const c of pgClients) await c.end().catch(() => undefined);
    for (const c of mysqlConns) c.destroy();
    await pgServer?.stop();
    await mariadb?.stop();
  });

  it('never reaches the screen raw, keeps the JSON one document, the exports intact and bounded', async () => {
    await expectCleanEverywhere('--pg', pgServer.superuserUrl, [
      '--set',
      'long_query_after=1s',
      '--set',
      'leak_idle_after=1s',
    ]);
    await expectCleanEverywhere('--mysql', mariadb.rootUrl, ['--set', 'long_query_after=1s']);
  });
});
