/**
 * The seeds' incident end to end, from outside: one replica of a real application (pg.Pool,
 * prom-client) leaks until the PostgreSQL server has no ordinary slot left, so the on-call account
 * is refused. The REAL postgres_exporter (connected before, holding its session) and the
 * application's metrics, scraped by a real Prometheus, are all poolctl can read: diagnose says
 * the server is full, from the exporter, shows which replica holds the connections, and exits 4.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startPoolApp, type PoolApp } from '../helpers/pool-app.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';
import { parseDiagnoseOptions, runDiagnose } from '../../src/commands/diagnose.js';
import type { Choice, Prompter } from '../../src/io/prompter.js';
import { readEvents } from '../helpers/expect.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { startPoolAppControl, type PoolAppControl } from '../helpers/pool-app-control.js';

const EXPORTER = '/usr/bin/prometheus-postgres-exporter';
const MAX = 20;
const RESERVED = 3;
const USABLE = MAX - RESERVED;

interface Report {
  status: string;
  exhausted?: string;
  checked?: string[];
  steps: { id: string; rows?: Record<string, unknown>[] }[];
  findings: { id: string; severity: string; message: string }[];
  metrics: Record<string, number>;
  suggested: { id: string }[];
}

let server: PgServer;
let prometheus: PrometheusServer;
let exporter: ChildProcess | undefined;
let app: PoolApp;
let oncallUrl: string;
let kubectl: KubectlStandin;

beforeAll(async () => {
  server = await startPostgres({ maxConnections: MAX, superuserReservedConnections: RESERVED });
  oncallUrl = await server.createRole('oncall', ['pg_monitor', 'pg_signal_backend']);
  kubectl = writeKubectlStandin();
  const port = await freePort();
  const u = new URL(server.superuserUrl);
  exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], {
    env: {
      DATA_SOURCE_NAME: `postgresql://${u.username}:${u.password}@127.0.0.1:${u.port}/postgres?sslmode=disable&application_name=postgres_exporter`,
    },
    stdio: 'ignore',
  });
  // Two replicas of 10 + 6: either pool alone could take every ordinary slot; api-2 leaks.
  app = await startPoolApp({
    engine: 'postgres',
    url: server.appUrl,
    replicas: 2,
    poolSize: 10,
    maxOverflow: 6,
    poolTimeoutMs: 1000,
    leaking: ['api-2'],
  });
  prometheus = await startPrometheus({
    scrape: [{ job: 'postgres', targets: [`127.0.0.1:${port}`] }, ...app.scrapeJobs()],
  });
  await prometheus.waitForResult('pg_up == 1');
  app.startTraffic(10);
  await prometheus.waitForResult(`sum(pg_stat_activity_count) >= ${USABLE}`, {
    timeoutMs: 60_000,
  });
  // The leak's checkouts in the pool metrics, after the server filled.
  await prometheus.waitForResult('db_pool_connections_active{pod="api-2"} >= 8', {
    timeoutMs: 30_000,
  });
}, 150_000);

afterAll(async () => {
  kubectl?.remove();
  await app?.stop();
  exporter?.kill();
  await prometheus?.stop();
  await server?.stop();
});

describe('a leaking replica has filled the server; the on-call account is refused', () => {
  it('diagnose --prometheus: the server full from postgres_exporter, the leaking replica the fullest pool, exit 4', async () => {
    const r = await runCli([
      'diagnose',
      '--pg',
      oncallUrl,
      '--prometheus',
      prometheus.url,
      '--set',
      'wait_window=15s',
      '--output',
      'json',
    ]);
    expect(r.stderr).toMatch(/remaining connection slots are reserved/);
    expect(r.code).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('critical');
    expect(['server', 'both']).toContain(report.exhausted);
    expect(report.checked).toContain('exporter');
    expect(report.checked).toContain('application');
    expect(report.metrics.exporter_utilization_percent).toBeGreaterThanOrEqual(100);
    expect(report.findings.find((f) => f.id === 'exporter-server-critical')!.message).toContain(
      'read from postgres_exporter',
    );
    // The pools say who holds the server's slots: the leaking replica, far ahead of the other.
    const pools = report.steps.find((s) => s.id === 'app-pool')!.rows!;
    const active = Object.fromEntries(pools.map((p) => [p.replica, Number(p.active)]));
    expect(active['api-2']).toBeGreaterThan(active['api-1'] ?? 0);
    // …and a finding names it with its numbers, since the server's holders could not be read.
    const holder = report.findings.find((f) => f.id === 'pool-holds-server')!;
    expect(holder.message).toContain(`Replica api-2's pool holds ${active['api-2']} of the`);
    expect(report.suggested.map((s) => s.id).slice(0, 2)).toEqual(['restart-app', 'rollback-app']);
  }, 60_000);

  it('the suggested rollback runs without the database; once the replica runs the previous build, verify --wait gets in and calls it recovered (exit 0)', async () => {
    const cluster = ['--kube-context', 'standin', '--kubectl', kubectl.bin];
    const rollback = await runCli(
      ['mitigate', '--pg', oncallUrl, ...cluster, '--action', 'rollback-app', '--yes'].concat([
        '--output',
        'json',
      ]),
      { env: kubectl.env },
    );
    // Done through kubectl; the server still refuses poolctl, so its health after is unknown.
    expect(rollback.stderr).not.toMatch(/internal error/);
    expect(rollback.code).toBe(4);
    expect(kubectl.calls().some((a) => a.join(' ').includes('rollout undo deployment/api'))).toBe(
      true,
    );
    // What the rollout does in a cluster: api-2 comes back with the previous (fixed) build.
    await app.restart('api-2', { leak: false });
    const verify = await runCli(
      ['verify', '--pg', oncallUrl, '--prometheus', prometheus.url, '--wait', '90s'].concat([
        '--interval',
        '1s',
        '--set',
        'verify_stable_for=3s',
        '--set',
        'wait_window=15s',
        '--output',
        'json',
      ]),
      { timeoutMs: 120_000 },
    );
    expect(verify.code, verify.stdout).toBe(0);
    const report = JSON.parse(verify.stdout) as Report;
    expect(report.status).toBe('healthy');
    // Recovered from the server's own reading (poolctl got in), the exporter and the pools.
    expect(report.checked).toEqual(['database', 'exporter', 'application']);
    expect(report.metrics.utilization_percent).toBeLessThan(70);
    expect(report.metrics.app_pool_utilization_percent).toBeLessThan(70);
  }, 150_000);

  it('the wizard, refused at first, knocks again for its verify once the rollback frees slots: the server read itself, not the old refusal (no exit 3)', async () => {
    // The leak again: the previous test's rollback brought api-2 back clean.
    await app.restart('api-2', { leak: true });
    await prometheus.waitForResult(`sum(pg_stat_activity_count) >= ${USABLE}`, {
      timeoutMs: 60_000,
    });
    let control: PoolAppControl | undefined;
    const cluster = writeKubectlStandin({});
    try {
      control = await startPoolAppControl(app);
      cluster.setScenario({ control: control.url });
      const asked: string[] = [];
      // Answers by the question's start; the verify waits until the server has slots again (its
      // exporter says so), as an operator watching the dashboard would.
      const answers: [string, () => Promise<string | boolean>][] = [
        ['Which mitigation?', async () => 'rollback-app'],
        ['Roll back the application: run this command?', async () => true],
        [
          'Verify the recovery now?',
          async () => {
            await prometheus.waitForResult(`sum(pg_stat_activity_count) < ${USABLE - 2}`, {
              timeoutMs: 60_000,
            });

            return true;
          },
        ],
        ['Next?', async () => 'done'],
        ['Recovered. Check the prevention now', async () => false],
      ];
      const answer = async (message: string) => {
        asked.push(message);
        const found = answers.find(([start]) => message.startsWith(start));
        if (!found) throw new Error(`unexpected prompt: ${message}`);
        return found[1]();
      };
      const prompter: Prompter = {
        confirm: async (message) => Boolean(await answer(message)),
        select: async <T extends string>(message: string, _choices: Choice<T>[]) =>
          String(await answer(message)) as T,
        input: async (message) => String(await answer(message)),
        typedConfirm: async (message) => Boolean(await answer(message)),
      };
      const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-refused-wizard-'));
      const deps = inProcessDeps(prompter, { stateDir });
      // In-process, kubectl inherits this process's environment: the stand-in's log and scenario.
      Object.assign(process.env, {
        KUBECTL_STANDIN_LOG: cluster.env.KUBECTL_STANDIN_LOG,
        KUBECTL_STANDIN_SCENARIO: cluster.env.KUBECTL_STANDIN_SCENARIO,
      });
      const outcome = await runDiagnose(
        parseDiagnoseOptions({
          pg: oncallUrl,
          prometheus: prometheus.url,
          kubeContext: 'standin',
          kubectl: cluster.bin,
          set: ['wait_window=15s'],
        }),
        deps,
      );
      expect(asked.slice(0, 3)).toEqual([
        'Which mitigation?',
        'Roll back the application: run this command?',
        'Verify the recovery now?',
      ]);
      expect(control.changes).toEqual(['undo']);
      // The verify read the server itself: its utilization step ran, no refusal carried over.
      const dir = join(stateDir, 'poolctl', 'incidents');
      const events = readEvents(join(dir, readdirSync(dir)[0]!));
      const verifyStart = events.findIndex((e) => e.type === 'step.start' && e.phase === 'verify');
      const verifyResults = events.slice(verifyStart).filter((e) => e.type === 'step.result');
      expect(verifyResults.find((e) => e.step === 'verify-utilization')).toMatchObject({
        status: 'ok',
      });
      expect(deps.io.stdout().slice(deps.io.stdout().indexOf('Verify'))).not.toContain(
        'refused poolctl',
      );
      // Read, not refused: recovered (0) or, while Prometheus still holds the old pool samples, 4.
      expect([0, 4]).toContain(outcome.exitCode);
    } finally {
      delete process.env.KUBECTL_STANDIN_LOG;
      delete process.env.KUBECTL_STANDIN_SCENARIO;
      cluster.remove();
      await control?.close();
    }
  }, 180_000);
});
