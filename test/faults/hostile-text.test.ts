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

describe('hostile server text on PostgreSQL', () => {
  let server: PgServer;
  const clients: pg.Client[] = [];
  const evilUser = `evil${ESC}[31muser`;

  beforeAll(async () => {
    // pg_stat_activity keeps the first track_activity_query_size bytes of a query: all of 1 MB.
    server = await startPostgres({ settings: { track_activity_query_size: '1048576' } });
    const quoted = `"${evilUser.replaceAll('"', '""')}"`;
    await server.psql(
      `CREATE ROLE ${quoted} LOGIN PASSWORD 'evil-pw'; GRANT pg_read_all_stats TO ${quoted};`,
    );
    const u = new URL(server.appUrl);
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
      clients.push(c);
      return c;
    };
    const appPassword = decodeURIComponent(u.password);
    // Long queries with hostile text: one short, one of 1 MB.
    const long = await connect('app', appPassword, `app${ESC}[31m\nname`);
    void long.query(`SELECT pg_sleep(3600) /* ${HOSTILE} */`).catch(() => undefined);
    const huge = await connect('app', appPassword, 'huge');
    void huge
      .query(`SELECT pg_sleep(3600) /* ${HOSTILE} ${'x'.repeat(MB)} */`)
      .catch(() => undefined);
    // An idle session of the hostile user whose last query was hostile.
    const idle = await connect(evilUser, 'evil-pw', 'idle');
    await idle.query(`SELECT 1 /* ${HOSTILE} */`);
    await new Promise((r) => setTimeout(r, 1500));
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await server?.stop();
  });

  const sets = ['--set', 'long_query_after=1s', '--set', 'leak_idle_after=1s'];

  it('on screen: no raw control character on stdout or stderr', async () => {
    const result = await runCli(['diagnose', '--pg', server.superuserUrl, ...sets]);
    expect([0, 4], result.stderr).toContain(result.code);
    expect(result.stdout).toContain('pg_sleep');
    expect(result.stdout).not.toMatch(RAW_CONTROL);
    expect(result.stderr).not.toMatch(RAW_CONTROL);
    expect(result.stdout).not.toContain('\n# injected heading');
  });

  it('as JSON: one valid document, its strings free of control characters', async () => {
    const result = await runCli([
      'diagnose',
      '--output',
      'json',
      '--pg',
      server.superuserUrl,
      ...sets,
    ]);
    expect([0, 4], result.stderr).toContain(result.code);
    const lines = result.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!) as unknown;
    expect(JSON.stringify(doc)).not.toMatch(/\\u001b|\\u009b|\\u0007|\\r/);
    expect(result.stderr).not.toMatch(RAW_CONTROL);
  });

  it('in the Markdown and HTML exports: sanitised, truncated, structure intact', async () => {
    const run = await runCli(['diagnose', '--pg', server.superuserUrl, ...sets]);
    const dir = join(run.stateDir, 'poolctl', 'incidents');
    const [file] = readdirSync(dir);
    const md = await runCli(['transcript', 'export', join(dir, file!), '--format', 'md']);
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).not.toMatch(RAW_CONTROL);
    expect(md.stdout).not.toMatch(/^# injected heading/m);
    expect(md.stdout).not.toMatch(/^\| injected \| row \|/m);
    // Server text sits in code spans, where HTML is text: never outside one.
    for (const line of md.stdout.split('\n').filter((l) => l.includes('<script>'))) {
      expect(line.replace(/`[^`\n]*`/g, '')).not.toContain('<script>');
    }
    expect(md.stdout.length).toBeLessThan(MB / 4);

    const html = await runCli(['transcript', 'export', join(dir, file!), '--format', 'html']);
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).not.toMatch(RAW_CONTROL);
    expect(html.stdout).not.toContain('<script>alert(1)</script>');
    expect(html.stdout).not.toContain('</code></pre><script>');
    expect(html.stdout.length).toBeLessThan(MB / 4);
  });
});

describe('hostile server text on MariaDB', () => {
  let server: MariaDBServer;
  const conns: mysql.Connection[] = [];

  beforeAll(async () => {
    server = await startMariaDB();
    for (const [name, query] of [
      [`app${ESC}[31m\nname`, `SELECT SLEEP(3600) /* ${HOSTILE} */`],
      ['huge', `SELECT SLEEP(3600) /* ${HOSTILE} ${'x'.repeat(MB)} */`],
    ] as const) {
      const c = await mysql.createConnection({
        uri: server.appUrl,
        connectAttributes: { program_name: name },
      });
      c.on('error', () => undefined);
      conns.push(c);
      void c.query(query).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 1500));
  });
  afterAll(async () => {
    for (const c of conns) c.destroy();
    await server?.stop();
  });

  it('screen, JSON and exports stay clean', async () => {
    const sets = ['--set', 'long_query_after=1s'];
    const screen = await runCli(['diagnose', '--mysql', server.rootUrl, ...sets]);
    expect([0, 4], screen.stderr).toContain(screen.code);
    expect(screen.stdout).toContain('SLEEP(3600)');
    expect(screen.stdout + screen.stderr).not.toMatch(RAW_CONTROL);

    const json = await runCli(['diagnose', '--output', 'json', '--mysql', server.rootUrl, ...sets]);
    const lines = json.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(JSON.parse(lines[0]!))).not.toMatch(/\\u001b|\\u009b|\\u0007|\\r/);

    const dir = join(screen.stateDir, 'poolctl', 'incidents');
    const [file] = readdirSync(dir);
    for (const format of ['md', 'html']) {
      const exported = await runCli(['transcript', 'export', join(dir, file!), '--format', format]);
      expect(exported.code, exported.stderr).toBe(0);
      expect(exported.stdout).not.toMatch(RAW_CONTROL);
      // HTML escapes it; Markdown keeps it inside code spans, where it is text.
      const outsideCode =
        format === 'md' ? exported.stdout.replace(/`[^`\n]*`/g, '') : exported.stdout;
      expect(outsideCode).not.toContain('<script>alert(1)</script>');
      expect(exported.stdout.length).toBeLessThan(MB / 4);
    }
  });
});
