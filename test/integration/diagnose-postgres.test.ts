import { readFileSync, statSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { readEvents } from '../helpers/expect.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  runbook: string;
  metrics: Record<string, number>;
  steps: { id: string; status: string; rows?: Record<string, unknown>[]; findings: string[] }[];
  findings: { id: string; severity: string; step: string; suggest: string[] }[];
  suggested: { id: string; command: string }[];
  manual: { step: string; command: string }[];
  targets: { label: string }[];
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

describe('diagnose against an exhausted PostgreSQL', () => {
  let server: PgServer;
  let held: HeldSessions;
  const lockClients: pg.Client[] = [];
  let lockerPid = 0;
  let waiterPid = 0;

  beforeAll(async () => {
    // 30 slots, 3 reserved for superusers: 27 usable. 26 taken = 96.3%, over the 95% critical line.
    server = await startPostgres({ maxConnections: 30, superuserReservedConnections: 3 });
    held = await holdSessions(server.appUrl, { idle: 14, idleInTx: 5, long: 5 });
    // A batch job holds a row lock in an open transaction; an api request waits for it.
    const locker = new pg.Client({ connectionString: server.appUrl, application_name: 'batch' });
    const waiter = new pg.Client({ connectionString: server.appUrl, application_name: 'api' });
    for (const c of [locker, waiter]) {
      c.on('error', () => {});
      await c.connect();
      lockClients.push(c);
    }
    lockerPid = (await locker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    waiterPid = (await waiter.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await locker.query('BEGIN');
    await locker.query("UPDATE orders SET status = 'held' WHERE id = 1");
    waiter.query("UPDATE orders SET status = 'waiting' WHERE id = 1").catch(() => {});
    // Let every session age past the 1s thresholds the tests set.
    await new Promise((r) => setTimeout(r, 1500));
  });

  afterAll(async () => {
    for (const c of lockClients) await c.end().catch(() => {});
    await held?.close();
    await server?.stop();
  });

  it('reports critical utilization, the sessions behind it and exits 4', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--output',
      'json',
      ...SHORT,
    ]);
    expect(result.stderr).not.toContain('Error:');
    expect(result.code).toBe(4);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.status).toBe('critical');
    expect(report.runbook).toBe('postgres/pool-exhausted');
    expect(report.metrics).toMatchObject({
      connections: 26,
      usable_connections: 27,
      max_connections: 30,
      active: 6, // 5 pg_sleep + the lock waiter
      idle: 14,
      idle_in_transaction: 6,
      utilization_percent: 96.3,
      busy_percent: 44.4,
    });

    const longPids = rowsOf(report, 'long-running').map((r) => r.pid);
    // The lock waiter has been active past the threshold too.
    expect(longPids.sort()).toEqual([...held.byKind.long, waiterPid].sort());
    const idleInTxPids = rowsOf(report, 'idle-in-transaction').map((r) => r.pid);
    expect(idleInTxPids.sort()).toEqual([...held.byKind.idleInTx, lockerPid].sort());
    expect(
      rowsOf(report, 'idle-leaks')
        .map((r) => r.pid)
        .sort(),
    ).toEqual([...held.byKind.idle].sort());
    const waits = rowsOf(report, 'lock-waits');
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({
      pid: waiterPid,
      blocked_by: String(lockerPid),
      blocker_state: 'idle in transaction',
    });

    const holders = rowsOf(report, 'holders');
    expect(holders.reduce((n, h) => n + Number(h.connections), 0)).toBe(26);
    expect(new Set(holders.map((h) => h.application))).toEqual(new Set(['api', 'worker', 'batch']));
    const states = Object.fromEntries(
      rowsOf(report, 'states').map((r) => [r.state, r.connections]),
    );
    expect(states).toEqual({ idle: 14, 'idle in transaction': 6, active: 6 });

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
    expect(report.findings.find((f) => f.id === 'pool-critical')?.severity).toBe('critical');
    expect(report.suggested.map((s) => s.id)).toEqual(
      expect.arrayContaining(['kill-idle', 'kill-idle-in-tx', 'cancel-long', 'kill-long']),
    );
    expect(report.manual.map((m) => m.step)).toContain('app-pool');
    // The password never leaves poolctl: not in the label, the suggestions or the transcript.
    const password = new URL(server.superuserUrl).password;
    expect(result.stdout).not.toContain(password);
    expect(report.targets[0]?.label).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);

    const events = readEvents(report.transcript);
    expect(events[0]?.type).toBe('session.start');
    expect(events.at(-1)).toMatchObject({ type: 'session.end', status: 'critical', exitCode: 4 });
    expect(events.filter((e) => e.type === 'step.result').length).toBeGreaterThanOrEqual(7);
    expect(events.some((e) => e.type === 'finding' && e.id === 'pool-critical')).toBe(true);
    expect(readFileSync(report.transcript, 'utf8')).not.toContain(password);
    expect(statSync(report.transcript).mode & 0o777).toBe(0o600);
  });

  it('prints the headline first and a summary with commands in human mode', async () => {
    const result = await runCli(['diagnose', '--pg', server.superuserUrl, ...SHORT]);
    expect(result.code).toBe(4);
    const lines = result.stdout.split('\n').filter((l) => l.trim());
    const headline = lines.findIndex((l) => l.includes('% full'));
    expect(headline).toBeGreaterThan(-1);
    expect(headline).toBeLessThan(3);
    expect(lines[headline]).toContain('96.3% full: 26 of 27 usable connections');
    expect(result.stdout).toContain('Status: CRITICAL');
    expect(result.stdout).toContain('poolctl mitigate --action kill-idle');
    expect(result.stdout).toContain('To do by hand');
    expect(result.stdout).toMatch(/Transcript: .*\.jsonl/);
    expect(result.stdout).not.toMatch(/[┌│]/); // no box drawing without a terminal
  });

  it('refuses an ordinary role when the server is out of slots, and names the way in', async () => {
    // One usable slot is left: take it, then poolctl as `app` is refused (53300).
    const extra = await holdSessions(server.appUrl, { idle: 1 });
    try {
      const result = await runCli(['diagnose', '--pg', server.appUrl, '--output', 'json']);
      expect(result.code).toBe(3);
      // --output json: the one document says why (test/faults/json-every-exit.test.ts).
      expect(JSON.parse(result.stdout)).toMatchObject({ status: 'unknown', error: { code: 3 } });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('out of ordinary connection slots');
      expect(result.stderr).toContain('superuser');
      expect(result.stderr).not.toContain(new URL(server.appUrl).password);
      // The superuser gets in through a reserved slot and sees a full server.
      const root = await runCli(['diagnose', '--pg', server.superuserUrl, '--output', 'json']);
      expect(root.code).toBe(4);
      expect((JSON.parse(root.stdout) as Report).metrics.utilization_percent).toBe(100);
    } finally {
      await extra.close();
    }
  });
});

describe('diagnose against a quiet PostgreSQL', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
    // The documented on-call grant: without it `app` cannot see other roles' sessions, and a
    // quiet server could not be told from a full one (test/faults/least-privilege-postgres).
    await server.psql('GRANT pg_monitor TO app;');
  });
  afterAll(async () => server?.stop());

  it('is healthy and exits 0', async () => {
    const result = await runCli(['diagnose', '--output', 'json'], {
      env: { DATABASE_URL: server.appUrl },
    });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.status).toBe('healthy');
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(report.metrics.connections).toBe(0);
  });

  it('reads the libpq environment', async () => {
    const url = new URL(server.appUrl);
    const result = await runCli(['diagnose', '--output', 'json'], {
      env: {
        PGHOST: '127.0.0.1',
        PGPORT: String(server.port),
        PGUSER: 'app',
        PGPASSWORD: decodeURIComponent(url.password),
        PGDATABASE: 'appdb',
      },
    });
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as Report).targets[0]?.label).toBe(
      `postgres://app@127.0.0.1:${server.port}/appdb`,
    );
  });
});
