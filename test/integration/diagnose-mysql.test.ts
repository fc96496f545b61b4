import { readFileSync, statSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { readEvents } from '../helpers/expect.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  runbook: string;
  metrics: Record<string, number>;
  steps: {
    id: string;
    status: string;
    error?: string;
    rows?: Record<string, unknown>[];
    findings: string[];
  }[];
  findings: { id: string; severity: string; step: string; suggest: string[]; message: string }[];
  suggested: { id: string; command: string }[];
  manual: { step: string; command: string }[];
  targets: { label: string; version: string }[];
  transcript: string;
}

const SHORT = [
  '--set',
  'long_query_after=1s',
  '--set',
  'leak_idle_after=1s',
  '--set',
  'idle_in_tx_after=1s',
];

function rowsOf(report: Report, step: string) {
  return report.steps.find((s) => s.id === step)?.rows ?? [];
}

const sorted = (ids: unknown[]) => ids.map(Number).sort((a, b) => a - b);

async function connect(url: string, programName: string): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({
    uri: url,
    connectAttributes: { program_name: programName },
  });
  conn.on('error', () => {});
  return conn;
}

describe('diagnose against an exhausted MariaDB', () => {
  let server: MariaDBServer;
  let held: HeldMysqlSessions;
  const lockConns: mysql.Connection[] = [];
  let lockerId = 0;
  let waiterId = 0;

  beforeAll(async () => {
    // 30 connections for ordinary accounts (root's extra one comes on top). 29 taken = 96.7%.
    server = await startMariaDB({ maxConnections: 30, performanceSchema: true });
    held = await holdMysqlSessions(server.appUrl, { sleep: 17, openTx: 5, long: 5 });
    // A batch job holds a row lock in an open transaction and sleeps; an api request waits for it.
    const locker = await connect(server.appUrl, 'batch');
    const waiter = await connect(server.appUrl, 'api');
    lockConns.push(locker, waiter);
    lockerId = locker.threadId!;
    waiterId = waiter.threadId!;
    await locker.query('START TRANSACTION');
    await locker.query("UPDATE orders SET status = 'held' WHERE id = 1");
    await waiter.query('SET SESSION innodb_lock_wait_timeout = 3600');
    waiter.query("UPDATE orders SET status = 'waiting' WHERE id = 1").catch(() => {});
    // Let every connection age past the 1s thresholds (the process list counts whole seconds).
    await new Promise((r) => setTimeout(r, 1500));
  });

  afterAll(async () => {
    for (const c of lockConns) c.destroy();
    await held?.close();
    await server?.stop();
  });

  it('reports critical utilization, the connections behind it and exits 4', async () => {
    const result = await runCli([
      'diagnose',
      '--mysql',
      server.rootUrl,
      '--output',
      'json',
      ...SHORT,
    ]);
    expect(result.stderr).not.toContain('Error:');
    expect(result.code).toBe(4);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.status).toBe('critical');
    expect(report.runbook).toBe('mysql/pool-exhausted');
    expect(report.metrics).toEqual({
      connections: 29,
      active: 6, // 5 SELECT SLEEP + the lock waiter
      idle: 17,
      idle_in_transaction: 6, // 5 consistent snapshots + the lock holder
      busy: 12,
      max_connections: 30,
      usable_connections: 30,
      utilization_percent: 96.7,
      busy_percent: 40,
    });
    for (const step of report.steps.filter((s) => s.rows)) {
      expect(step.status, `${step.id}: ${step.error}`).toBe('ok');
    }

    expect(sorted(rowsOf(report, 'long-running').map((r) => r.pid))).toEqual(
      sorted([...held.byKind.long, waiterId]),
    );
    expect(sorted(rowsOf(report, 'idle-leaks').map((r) => r.pid))).toEqual(
      sorted(held.byKind.sleep),
    );
    const openTx = rowsOf(report, 'idle-in-transaction');
    // Every open transaction is listed, the waiter's too; the finding counts the sleeping ones.
    expect(sorted(openTx.map((r) => r.pid))).toEqual(
      sorted([...held.byKind.openTx, lockerId, waiterId]),
    );
    expect(openTx.find((r) => r.pid === waiterId)).toMatchObject({
      command: 'Query',
      trx_state: 'LOCK WAIT',
      idle_s: null,
    });
    expect(openTx.find((r) => r.pid === lockerId)).toMatchObject({
      command: 'Sleep',
      rows_locked: 1,
    });
    const waits = rowsOf(report, 'lock-waits');
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({
      pid: waiterId,
      user: 'app',
      blocked_by: String(lockerId),
      blocker_state: 'idle in transaction',
    });

    const holders = rowsOf(report, 'holders');
    expect(holders.reduce((n, h) => n + Number(h.connections), 0)).toBe(29);
    expect(new Set(holders.map((h) => h.application))).toEqual(new Set(['api', 'worker', 'batch']));
    expect(holders.every((h) => h.user === 'app' && h.client === '127.0.0.1')).toBe(true);
    expect(holders.reduce((n, h) => n + Number(h.idle_in_transaction), 0)).toBe(6);
    const commands = Object.fromEntries(
      rowsOf(report, 'states').map((r) => [r.command, r.connections]),
    );
    expect(commands).toEqual({ Sleep: 23, Query: 6 });
    const counters = Object.fromEntries(
      rowsOf(report, 'server-counters').map((r) => [r.Variable_name, Number(r.Value)]),
    );
    expect(Object.keys(counters).sort()).toEqual([
      'Aborted_connects',
      'Connection_errors_max_connections',
      'Max_used_connections',
      'Threads_connected',
      'Threads_running',
    ]);
    expect(counters.Threads_connected).toBe(30); // the 29 and poolctl

    const ids = report.findings.map((f) => f.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'pool-critical',
        'long-queries',
        'idle-leak-suspects',
        'idle-in-transaction',
        'lock-waits',
      ]),
    );
    expect(ids).not.toContain('limited-view');
    expect(ids).not.toContain('step-failed');
    expect(report.findings.find((f) => f.id === 'pool-critical')?.severity).toBe('critical');
    expect(report.findings.find((f) => f.id === 'idle-in-transaction')?.message).toMatch(/^6 /);
    expect(report.suggested.map((s) => s.id)).toEqual(
      expect.arrayContaining(['kill-idle', 'kill-idle-in-tx', 'cancel-long', 'kill-long']),
    );
    expect(report.manual.map((m) => m.step)).toContain('app-pool');
    const password = new URL(server.rootUrl).password;
    expect(result.stdout).not.toContain(password);
    expect(report.targets[0]?.label).toBe(`mysql://root@127.0.0.1:${server.port}/`);
    expect(report.targets[0]?.version).toMatch(/^10\.\d+\.\d+$/);

    const text = readFileSync(report.transcript, 'utf8');
    const events = readEvents(report.transcript);
    expect(events[0]).toMatchObject({
      type: 'session.start',
      runbook: 'mysql/pool-exhausted',
      targets: [`mysql://root@127.0.0.1:${server.port}/`],
    });
    expect(events.at(-1)).toMatchObject({ type: 'session.end', status: 'critical', exitCode: 4 });
    expect(events.filter((e) => e.type === 'step.result').length).toBeGreaterThanOrEqual(8);
    expect(events.some((e) => e.type === 'finding' && e.id === 'pool-critical')).toBe(true);
    expect(text).not.toContain(password);
    expect(statSync(report.transcript).mode & 0o777).toBe(0o600);
  });

  it('prints the headline first and a summary with commands in human mode', async () => {
    const result = await runCli(['diagnose', '--mysql', server.rootUrl, ...SHORT]);
    expect(result.code).toBe(4);
    const lines = result.stdout.split('\n').filter((l) => l.trim());
    const headline = lines.findIndex((l) => l.includes('% full'));
    expect(headline).toBeGreaterThan(-1);
    expect(headline).toBeLessThan(3);
    expect(lines[headline]).toContain(
      '96.7% full: 29 of 30 usable connections in use (max_connections 30) — 6 active, 17 idle, 6 idle in transaction',
    );
    expect(lines[0]).toContain('MariaDB 10.');
    expect(result.stdout).toContain('Status: CRITICAL');
    expect(result.stdout).toContain('poolctl mitigate --action kill-idle');
    expect(result.stdout).toContain('To do by hand');
    expect(result.stdout).not.toContain(new URL(server.rootUrl).password);
  });

  it('selects the right candidates for every kill action', async () => {
    const { connectMysql } = await import('../../src/targets/mysql.js');
    const { findRunbook } = await import('../../src/runbook/bundled.js');
    const runbook = findRunbook('mysql/pool-exhausted')!;
    const sqlOf = (id: string) => {
      const step = runbook.actions.find((a) => a.id === id);
      if (step?.kind !== 'terminate') throw new Error(`${id} is not a terminate action`);
      return step.sql;
    };
    const url = new URL(server.rootUrl);
    const target = await connectMysql({
      engine: 'mysql',
      host: url.hostname,
      port: Number(url.port),
      user: 'root',
      password: decodeURIComponent(url.password),
      database: '',
      connectTimeoutMs: 5000,
      statementTimeoutMs: 10_000,
      from: 'test',
    });
    try {
      expect(target.info).toMatchObject({ product: 'MariaDB', user: 'root' });
      const idle = await target.candidates({ sql: sqlOf('kill-idle'), params: [1] });
      expect(sorted(idle.map((s) => s.pid))).toEqual(sorted(held.byKind.sleep));
      const inTx = await target.candidates({ sql: sqlOf('kill-idle-in-tx'), params: [1] });
      expect(sorted(inTx.map((s) => s.pid))).toEqual(sorted([...held.byKind.openTx, lockerId]));
      const long = await target.candidates({ sql: sqlOf('cancel-long'), params: [1] });
      expect(sorted(long.map((s) => s.pid))).toEqual(sorted([...held.byKind.long, waiterId]));
      // Nothing has run for an hour yet.
      expect(await target.candidates({ sql: sqlOf('kill-long'), params: [3600] })).toEqual([]);
      for (const s of [...idle, ...inTx, ...long]) {
        expect(s.user).toBe('app');
        expect(s.superuser).toBe(false);
        expect(s.client).toBe('127.0.0.1');
        expect(['api', 'worker', 'batch']).toContain(s.application);
        // user@host:port: a later connection reusing the id comes from another port.
        expect(s.sessionToken).toMatch(/^app@127\.0\.0\.1:\d+$/);
        expect(s.inStateS).toBeGreaterThanOrEqual(1);
      }
      expect(idle.every((s) => s.state === 'Sleep')).toBe(true);
      expect(long.find((s) => s.pid === held.byKind.long[0])?.query).toBe('SELECT SLEEP(3600)');
      // The candidate rows carry the full host:port for the re-check at kill time.
      const [row] = await target.query(sqlOf('kill-idle'), [1]);
      expect(String(row?.host)).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      await target.close();
    }
  });

  it('refuses an ordinary account when the server is full, and gets in as root', async () => {
    // The last ordinary slot: 30 of 30 taken. MariaDB keeps one more for SUPER/CONNECTION ADMIN.
    const extra = await holdMysqlSessions(server.appUrl, { sleep: 1 });
    const abortedBefore = Number(
      (await server.sql("SHOW GLOBAL STATUS LIKE 'Aborted_connects'")).split('\t')[1],
    );
    try {
      const result = await runCli(['diagnose', '--mysql', server.appUrl, '--output', 'json']);
      expect(result.code).toBe(3);
      // --output json: the one document says why (test/faults/json-every-exit.test.ts).
      expect(JSON.parse(result.stdout)).toMatchObject({ status: 'unknown', error: { code: 3 } });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('error 1040 "Too many connections"');
      expect(result.stderr).toContain('SUPER or CONNECTION ADMIN');
      expect(result.stderr).toContain(`--mysql mysql://root@127.0.0.1:${server.port}/`);
      expect(result.stderr).toContain('extra_port');
      expect(result.stderr).not.toContain(new URL(server.appUrl).password);

      // The route it names works: root takes the extra connection and sees the full server.
      const root = await runCli(['diagnose', '--mysql', server.rootUrl, '--output', 'json']);
      expect(root.code).toBe(4);
      const report = JSON.parse(root.stdout) as Report;
      expect(report.metrics).toMatchObject({
        connections: 30,
        max_connections: 30,
        utilization_percent: 100,
      });
      const counters = Object.fromEntries(
        rowsOf(report, 'server-counters').map((r) => [r.Variable_name, Number(r.Value)]),
      );
      expect(counters.Max_used_connections).toBe(31); // max_connections + root's extra one
      // MariaDB counts a refusal at the account check (the extra connection was still free) as an
      // aborted connect; Connection_errors_max_connections only counts refusals at accept, when
      // the extra connection is taken as well.
      expect(counters.Aborted_connects).toBe(abortedBefore + 1);
      expect(counters.Connection_errors_max_connections).toBe(0);
    } finally {
      await extra.close();
    }
  });
});

describe('diagnose against a quiet MariaDB', () => {
  let server: MariaDBServer;
  beforeAll(async () => {
    server = await startMariaDB();
  });
  afterAll(async () => server?.stop());

  it('is healthy and exits 0 (DATABASE_URL=mysql://…)', async () => {
    const result = await runCli(['diagnose', '--output', 'json'], {
      env: { DATABASE_URL: server.rootUrl },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.status).toBe('healthy');
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(report.metrics).toMatchObject({ connections: 0, utilization_percent: 0 });
    expect(report.steps.filter((s) => s.status === 'failed')).toEqual([]);
  });

  it('reads MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_PWD and USER', async () => {
    const result = await runCli(['diagnose', '--output', 'json'], {
      env: {
        MYSQL_HOST: '127.0.0.1',
        MYSQL_TCP_PORT: String(server.port),
        MYSQL_PWD: decodeURIComponent(new URL(server.rootUrl).password),
        USER: 'root',
      },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.targets[0]?.label).toBe(`mysql://root@127.0.0.1:${server.port}/`);
    expect(report.status).toBe('healthy');
  });

  it('takes a mariadb:// URL, its password from MYSQL_PWD', async () => {
    const result = await runCli(
      ['diagnose', '--mysql', `mariadb://root@127.0.0.1:${server.port}/`, '--output', 'json'],
      { env: { MYSQL_PWD: decodeURIComponent(new URL(server.rootUrl).password) } },
    );
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as Report).targets[0]?.label).toBe(
      `mysql://root@127.0.0.1:${server.port}/`,
    );
  });

  it('says so when the account lacks PROCESS and sees only its own connections (critical, exit 4)', async () => {
    const own = await holdMysqlSessions(server.appUrl, { sleep: 2, openTx: 1 });
    try {
      await new Promise((r) => setTimeout(r, 1100));
      const result = await runCli([
        'diagnose',
        '--mysql',
        server.appUrl,
        '--output',
        'json',
        ...SHORT,
      ]);
      // Numbers that leave out every other account cannot call a server healthy: critical, exit 4.
      expect(result.code).toBe(4);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.status).toBe('critical');
      // Its own three connections; the open transaction is invisible without PROCESS.
      expect(report.metrics).toMatchObject({ connections: 3, idle: 3, idle_in_transaction: 0 });
      const limited = report.findings.find((f) => f.id === 'limited-view');
      expect(limited?.severity).toBe('critical');
      expect(limited?.message).toContain("GRANT PROCESS ON *.* TO 'app'@'%';");
      const status = Object.fromEntries(report.steps.map((s) => [s.id, s.status]));
      expect(status).toMatchObject({
        utilization: 'ok',
        states: 'ok',
        'long-running': 'ok',
        'idle-leaks': 'ok',
        'server-counters': 'ok',
      });
      expect(sorted(rowsOf(report, 'idle-leaks').map((r) => r.pid))).toEqual(sorted(own.ids));
      expect(report.steps.find((s) => s.id === 'idle-in-transaction')?.error).toContain('PROCESS');
    } finally {
      await own.close();
    }
  });
});
