/**
 * A PostgreSQL server filled to its last ordinary slot, so that the on-call account is refused
 * ("remaining connection slots are reserved"), while the REAL prometheus-postgres-exporter, which
 * holds its connection between scrapes, goes on reporting it to a real Prometheus. diagnose and
 * verify with --prometheus read the server from the exporter: critical (exit 4), the server's side
 * named, the numbers said to come from postgres_exporter; never healthy from what they could not
 * read. When poolctl reads the server itself, the exporter is a second opinion (info).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/expect.js';
import { freePort } from '../helpers/free-port.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-server.js';
import { writeKubectlStandin } from '../helpers/kubectl-standin.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

const EXPORTER = '/usr/bin/prometheus-postgres-exporter';
// 20 slots, 3 reserved for superusers: 17 usable; the exporter holds one of them.
const MAX = 20;
const RESERVED = 3;
const USABLE = MAX - RESERVED;

interface Report {
  status: string;
  exhausted?: string;
  checked?: string[];
  steps: { id: string; status: string; error?: string; rows?: Record<string, unknown>[] }[];
  findings: { id: string; severity: string; message: string; step: string }[];
  metrics: Record<string, number>;
  error?: { code: number; kind: string; message: string };
}

let server: PgServer;
let prometheus: PrometheusServer;
let exporter: ChildProcess | undefined;
let held: HeldSessions | undefined;
let oncallUrl: string;

beforeAll(async () => {
  server = await startPostgres({ maxConnections: MAX, superuserReservedConnections: RESERVED });
  // The least-privileged on-call account of the README: it sees and signals, it is no superuser.
  oncallUrl = await server.createRole('oncall', ['pg_monitor', 'pg_signal_backend']);
  const port = await freePort();
  const u = new URL(server.superuserUrl);
  exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], {
    env: {
      DATA_SOURCE_NAME: `postgresql://${u.username}:${u.password}@127.0.0.1:${u.port}/postgres?sslmode=disable&application_name=postgres_exporter`,
    },
    stdio: 'ignore',
  });
  prometheus = await startPrometheus({
    scrape: [{ job: 'postgres', targets: [`127.0.0.1:${port}`] }],
  });
  await prometheus.waitForResult('pg_up == 1');
  // Every ordinary slot but the exporter's: the next ordinary connect is refused.
  const exporterSessions = Number(
    await server.psql(
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'postgres_exporter'",
    ),
  );
  held = await holdSessions(server.appUrl, {
    idle: USABLE - exporterSessions,
    appNames: ['api'],
  });
  await prometheus.waitForResult(`sum(pg_stat_activity_count) >= ${USABLE}`);
}, 120_000);

afterAll(async () => {
  exporter?.kill();
  await held?.close();
  await prometheus?.stop();
  await server?.stop();
});

const run = (command: string, url: string, ...rest: string[]) =>
  runCli([command, '--pg', url, '--prometheus', prometheus.url, '--output', 'json', ...rest]);

describe('the server full, the on-call account refused, the exporter still scraping', () => {
  it('without --prometheus: exit 3, one line naming the way in', async () => {
    const r = await runCli(['diagnose', '--pg', oncallUrl, '--output', 'json']);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/remaining connection slots are reserved/);
  }, 60_000);

  it('diagnose --prometheus: critical from postgres_exporter, exit 4, the server side named', async () => {
    const r = await run('diagnose', oncallUrl);
    expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
    expect(r.code).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('critical');
    expect(report.exhausted).toBe('server');
    // Read from outside only: the server's own numbers are absent, not invented.
    expect(report.checked).toEqual(['exporter']);
    expect(report.metrics.utilization_percent).toBeUndefined();
    expect(report.metrics.exporter_connections).toBe(USABLE);
    expect(report.metrics.exporter_usable_connections).toBe(USABLE);
    expect(report.metrics.exporter_utilization_percent).toBe(100);
    const full = report.findings.find((f) => f.id === 'exporter-server-critical')!;
    expect(full.severity).toBe('critical');
    expect(full.message).toContain(`${USABLE} of ${USABLE}`);
    expect(full.message).toContain('read from postgres_exporter');
    const refused = report.findings.find((f) => f.id === 'database-refused')!;
    expect(refused.message).toMatch(/remaining connection slots are reserved/);
    // The database's steps did not run, and say why; nothing claims a number from them.
    const utilization = report.steps.find((s) => s.id === 'utilization')!;
    expect(utilization.status).toBe('skipped');
    expect(utilization.error).toMatch(/refused/);
    expect(report.error).toBeUndefined();
    // The refusal, in one line, on stderr as always.
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('diagnose in human form names the server side and where the numbers come from', async () => {
    const r = await runCli(['diagnose', '--pg', oncallUrl, '--prometheus', prometheus.url]);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('refused poolctl');
    expect(r.stdout).toContain(
      `● 100.0% full (from its exporter; the server refused poolctl): ${USABLE} of ${USABLE} usable connections in use`,
    );
    expect(r.stdout).toContain('The database server is exhausted (read from its exporter');
    expect(r.stdout).toContain(`Server from its exporter: 100.0% (${USABLE} of ${USABLE}`);
    expect(r.stdout).toContain(
      '– How full is the server (not run: the database refused poolctl)\n',
    );
  }, 60_000);

  it('the refused run leaves a record: no password or token in it, the exporter named in its exports', async () => {
    const token = 'prom-token-exporter-3c1d';
    const password = new URL(oncallUrl).password;
    const r = await runCli(
      ['diagnose', '--pg', oncallUrl, '--prometheus', prometheus.url, '--output', 'json'],
      { env: { PROMETHEUS_TOKEN: token } },
    );
    expect(r.code).toBe(4);
    const { transcript } = JSON.parse(r.stdout) as { transcript: string };
    const seen = [r.stdout, r.stderr, readFileSync(transcript, 'utf8')];
    for (const format of ['md', 'html']) {
      const exported = await runCli(['transcript', 'export', transcript, '--format', format]);
      expect(exported.code, exported.stderr).toBe(0);
      expect(exported.stdout).toContain('read from postgres_exporter');
      seen.push(exported.stdout + exported.stderr);
    }
    for (const text of seen) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(password);
    }
  }, 60_000);

  it('verify --prometheus: still full, read from the exporter: exit 4, never recovered', async () => {
    const r = await run('verify', oncallUrl);
    expect(r.code).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('critical');
    const still = report.findings.find((f) => f.id === 'exporter-still-full')!;
    expect(still.severity).toBe('critical');
    expect(still.message).toContain('read from postgres_exporter');
  }, 60_000);

  it('a superuser gets in through a reserved slot: its own reading decides, the exporter is a second opinion', async () => {
    const r = await run('diagnose', server.superuserUrl);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.checked).toContain('database');
    expect(report.checked).toContain('exporter');
    expect(report.findings.some((f) => f.id === 'pool-critical')).toBe(true);
    const second = report.findings.find((f) => f.id === 'exporter-server-critical')!;
    expect(second.severity).toBe('info');
    expect(second.message).toMatch(/^Second opinion: /);
    expect(report.findings.some((f) => f.id === 'database-refused')).toBe(false);
  }, 60_000);

  it("the capacity guard, the server refusing: the exporter's usable connections; none known and rising, it refuses", async () => {
    const kubectl = writeKubectlStandin();
    try {
      kubectl.setScenario({ contexts: ['prod'] });
      const mitigate = (extra: string[], ...rest: string[]) =>
        runCli(
          [
            'mitigate',
            ...['--pg', oncallUrl, ...extra, '--kube-context', 'prod', '--namespace', 'shop'],
            ...['--action', 'scale-app', '--yes', ...rest],
          ],
          { env: kubectl.env, timeoutMs: 60_000 },
        );
      // The stand-in's Deployment: 3 × (20 + 10); 6 replicas against the exporter's 17 usable.
      const up = await mitigate(['--prometheus', prometheus.url], '--set', 'replicas=6');
      expect(up.code, up.stderr).toBe(5);
      expect(up.stdout + up.stderr).toContain(
        `(6 + 2) × (20 + 10) = 240 > ${USABLE} usable − 10 buffer`,
      );
      expect(up.stdout).toContain(
        'usable connections from the exporter: the server refused poolctl',
      );
      const sent = () => kubectl.calls().filter((args) => args[2] === 'scale');
      expect(sent()).toEqual([]);
      // Down to 1 replica lowers the demand: not blocked (proven sent in
      // change-kubernetes-postgres; here --dry-run, the after-measurement would wait for pools
      // this Prometheus does not scrape).
      const down = await mitigate(
        ['--prometheus', prometheus.url],
        ...['--set', 'replicas=1', '--dry-run'],
      );
      // Not declined (5): 4 is the server, which its exporter still shows full.
      expect(down.code, down.stderr).toBe(4);
      expect(down.stdout).toContain(
        `(1 + 1) × (20 + 10) = 60 > ${USABLE} usable − 10 buffer: oversubscribes the database by 43 connections past its ${USABLE} usable (RUNBOOK-006 Prevention 1) (usable connections from the exporter: the server refused poolctl); does not raise the demand (now 120): not blocked`,
      );
      // Without Prometheus the usable connections are unknown: a rise is refused, not guessed.
      kubectl.clearCalls();
      const blind = await mitigate([], '--set', 'replicas=6');
      expect(blind.code).toBe(5);
      expect(blind.stdout).toContain(
        'capacity unchecked (usable connections: the database could not be measured (and no --prometheus)): pass --allow-oversubscribe',
      );
      expect(sent()).toEqual([]);
    } finally {
      kubectl.remove();
    }
  }, 120_000);

  it('verify --wait knocks again: once a slot frees, poolctl reads the server itself', async () => {
    let released = false;
    const r = await runCli(
      [
        'verify',
        '--pg',
        oncallUrl,
        '--prometheus',
        prometheus.url,
        '--wait',
        '6s',
        '--interval',
        '1s',
        '--output',
        'json',
      ],
      {
        onStderr: (text) => {
          if (released || !text.includes('not there yet')) return;
          released = true;
          void held?.close();
          held = undefined;
        },
      },
    );
    expect(released).toBe(true);
    expect(r.stderr).toContain('the database lets poolctl in now');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.findings.some((f) => f.id === 'database-refused')).toBe(false);
    expect(report.checked).toContain('database');
    expect(report.metrics.utilization_percent).toBeLessThan(70);
  }, 60_000);
});

describe('the server with room again, the on-call account refused for another reason', () => {
  beforeAll(async () => {
    await held?.close();
    held = undefined;
    await prometheus.waitForResult(`sum(pg_stat_activity_count) < ${USABLE / 2}`);
  }, 60_000);

  const wrongPassword = () => {
    const u = new URL(oncallUrl);
    u.password = 'not-the-password';
    return u.toString();
  };

  it('diagnose: the exporter sees room, yet poolctl says unreachable (exit 3), not healthy', async () => {
    const r = await run('diagnose', wrongPassword());
    expect(r.code).toBe(3);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).not.toBe('healthy');
    expect(report.error?.kind).toBe('target');
    expect(report.error?.message).toMatch(/password authentication failed/);
    expect(report.metrics.exporter_utilization_percent).toBeLessThan(50);
    expect(report.findings.filter((f) => f.severity === 'critical')).toEqual([]);
  }, 60_000);

  it('verify: below the thresholds from the exporter alone is no recovery (exit 3, unknown)', async () => {
    const r = await run('verify', wrongPassword());
    expect(r.code).toBe(3);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('unknown');
    expect(report.error?.kind).toBe('target');
    expect(report.findings.some((f) => f.id === 'exporter-still-full')).toBe(false);
  }, 60_000);

  it('with the server reachable again, the exporter raises nothing', async () => {
    await sleep(0);
    const r = await run('verify', oncallUrl);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.checked).toContain('database');
    expect(
      report.findings.filter((f) => f.step === 'verify-server-exporter' && f.severity !== 'info'),
    ).toEqual([]);
  }, 60_000);
});
