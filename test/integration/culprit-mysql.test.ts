/**
 * The culprit named (issue 14, item 4) on a real MariaDB with real connections, through the built
 * CLI: the program that stands out against the next holder, the leak signature (one program's
 * connections left asleep at different moments) with restart and rollback before kill-idle, and
 * the lower thresholds that would match when the defaults match nothing. With performance_schema
 * on (program names readable) and off (MariaDB's default: the account names the holder instead).
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  findings: { id: string; severity: string; message: string }[];
  suggested: { id: string }[];
}

let server: MariaDBServer;
let held: HeldMysqlSessions;
const leaked: mysql.Connection[] = [];

beforeAll(async () => {
  server = await startMariaDB({ maxConnections: 20, performanceSchema: true });
  for (let i = 0; i < 6; i++) {
    const conn = await mysql.createConnection({
      uri: server.appUrl,
      connectAttributes: { program_name: 'orders' },
    });
    leaked.push(conn);
    await conn.query('SELECT 1 AS leaked_checkout');
    await new Promise((r) => setTimeout(r, 1100));
  }
  held = await holdMysqlSessions(server.appUrl, {
    sleep: 3,
    long: 2,
    programNames: ['web', 'batch'],
  });
  await new Promise((r) => setTimeout(r, 1500));
}, 90_000);

afterAll(async () => {
  await Promise.all(leaked.map((c) => c.end().catch(() => undefined)));
  await held?.close();
  await server?.stop();
});

async function diagnose(...sets: string[]): Promise<{ code: number | null; report: Report }> {
  const args = ['diagnose', '--mysql', server.rootUrl, '--output', 'json'];
  for (const s of sets) args.push('--set', s);
  const r = await runCli(args);
  expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  return { code: r.code, report: JSON.parse(r.stdout) as Report };
}

describe('the culprit named on a real MariaDB', () => {
  it('names orders: 6 of 20 slots, twice the next holder; the leak signature with restart and rollback first', async () => {
    const { report } = await diagnose('leak_idle_after=1s');
    const step = report.findings.find((f) => f.id === 'step-failed');
    expect(step, step?.message).toBeUndefined();
    const named = report.findings.find((f) => f.id === 'holder-stands-out');
    expect(named?.message).toMatch(
      /^orders \(app from (localhost|127\.0\.0\.1), database appdb\) holds 6 connections \(0 active, 6 idle, 0 idle in transaction; 30(\.0)?% of max_connections\), 2× the next holder: web \(app from \S+\) with 3$/,
    );
    const leak = report.findings.find((f) => f.id === 'leak-signature');
    expect(leak?.message).toMatch(
      /^Leak signature: orders \(app from \S+\) holds 6 connections idle longer than 1s, left asleep at [3-7] different moments/,
    );
    const ids = report.suggested.map((s) => s.id);
    expect(ids.slice(0, 2)).toEqual(['restart-app', 'rollback-app']);
    expect(ids.indexOf('kill-idle')).toBeGreaterThan(1);
  }, 30_000);

  it('critical and the defaults match nothing: the count and the flag that would match', async () => {
    const { code, report } = await diagnose(
      'utilization_critical=50',
      'utilization_warning=40',
      'long_query_after=1s',
    );
    expect(code).toBe(4);
    const hints = report.findings.filter((f) => f.id === 'lower-threshold').map((f) => f.message);
    expect(hints).toContainEqual(
      expect.stringMatching(
        /^\d+ app connections asleep > (\d+)s, none past kill_idle_after=5m: `--set kill_idle_after=\1s` lets kill-idle match them$/,
      ),
    );
    expect(hints).toContainEqual(
      expect.stringMatching(
        /^2 app statements running > (\d+)s, none past cancel_long_after=2m: `--set cancel_long_after=\1s` lets cancel-long match them$/,
      ),
    );
  }, 30_000);
});

describe('least privilege and stock MariaDB', () => {
  it('an account without PROCESS or performance_schema reads the groups of what it sees: idle-groups does not fail', async () => {
    await server.sql(
      "CREATE USER IF NOT EXISTS plain@'%' IDENTIFIED BY 'plainpw1'; GRANT SELECT ON appdb.* TO plain@'%';",
    );
    const r = await runCli([
      'diagnose',
      '--mysql',
      server.url('plain', 'plainpw1'),
      '--set',
      'leak_idle_after=1s',
      '--output',
      'json',
    ]);
    const report = JSON.parse(r.stdout) as Report & {
      steps: { id: string; status: string; error?: string }[];
    };
    const groups = report.steps.find((s) => s.id === 'idle-groups');
    expect(groups?.status, groups?.error).toBe('ok');
    // (holders, idle-in-transaction and lock-waits do fail for this account: PROCESS, sys.)
    expect(report.findings.filter((f) => f.message.startsWith('Sleeping connections'))).toEqual([]);
  }, 30_000);

  it('performance_schema OFF (the default): the account stands in for the program', async () => {
    const stock = await startMariaDB({ maxConnections: 20 });
    const conns: mysql.Connection[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const conn = await mysql.createConnection({ uri: stock.appUrl });
        conns.push(conn);
        await conn.query('SELECT 1');
        await new Promise((r) => setTimeout(r, 1100));
      }
      const r = await runCli([
        'diagnose',
        '--mysql',
        stock.rootUrl,
        '--set',
        'leak_idle_after=1s',
        '--output',
        'json',
      ]);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.findings.find((f) => f.id === 'leak-signature')?.message).toMatch(
        /^Leak signature: \(unknown: performance_schema OFF\) \(app from \S+\) holds 4 connections idle longer than 1s/,
      );
    } finally {
      await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
      await stock.stop();
    }
  }, 60_000);
});
