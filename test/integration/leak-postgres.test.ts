/**
 * Issue 14's scenario end to end: three replicas of a real application with real pools
 * (pg.Pool), one of them leaking, exporting the seed's metrics to a real Prometheus, against a
 * real PostgreSQL that has room. poolctl must call it critical and name the replica; killing the
 * server sessions must not read as a recovery (pg.Pool, like SQLAlchemy, still counts the
 * leaked checkouts); restarting the replica with the fixed build must.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeakRig, type LeakRig } from '../helpers/leak-rig.js';
import type { PoolApp } from '../helpers/pool-app.js';
import type { PgServer } from '../helpers/postgres-server.js';
import type { PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  exhausted?: string;
  metrics: Record<string, number>;
  findings: { id: string; message: string }[];
  suggested: { id: string }[];
}

let rig: LeakRig;
let server: PgServer;
let app: PoolApp;
let prometheus: PrometheusServer;

beforeAll(async () => {
  // 3 × (4 + 2) = 18 connections at most: the server keeps room whatever the pools do.
  rig = await startLeakRig({ poolSize: 4, maxOverflow: 2, poolTimeoutMs: 1000 });
  ({ server, app, prometheus } = rig);
  app.startTraffic(5);
  await rig.waitUntilFull(60_000);
}, 120_000);

afterAll(async () => {
  await rig?.stop();
});

// The wait p95 over a short window, so that a recovery shows within seconds, not 5 minutes.
const sets = ['--set', 'wait_window=15s'];

describe('a real leak in one replica, the server with room', () => {
  it('diagnose: critical, the replica named, the application side exhausted, a restart suggested', async () => {
    const r = await runCli(
      ['diagnose', '--pg', server.superuserUrl, '--prometheus', prometheus.url, ...sets].concat([
        '--output',
        'json',
      ]),
    );
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('critical');
    expect(report.exhausted).toBe('application');
    expect(report.metrics.app_pool_utilization_percent).toBeGreaterThanOrEqual(95);
    expect(report.metrics.utilization_percent).toBeLessThan(90);
    const culprit = report.findings.filter((f) => f.id === 'app-pool-critical');
    expect(culprit.map((f) => f.message).join('\n')).toContain("Replica api-2's pool");
    expect(culprit.map((f) => f.message).join('\n')).not.toMatch(/api-1|api-3/);
    expect(report.suggested.map((s) => s.id)).toContain('restart-app');
  }, 60_000);

  it('killing its sessions on the server is not a recovery; restarting it with the fixed build is', async () => {
    const kill = await runCli(
      ['mitigate', '--pg', server.superuserUrl, '--action', 'kill-idle', '--yes'].concat([
        '--set',
        'kill_idle_after=1s',
        '--output',
        'json',
      ]),
    );
    expect(kill.code, kill.stderr).toBe(0);
    // It did end api-2's leaked sessions (and whatever else sat idle): the server side is free.
    const killed = (
      JSON.parse(kill.stdout) as { actions: { results: { outcome: string }[] }[] }
    ).actions[0]!.results.filter((result) => result.outcome === 'terminated');
    expect(killed.length).toBeGreaterThanOrEqual(6);
    // pg.Pool still counts the leaked checkouts: the application has not recovered.
    const after = await runCli(
      ['verify', '--pg', server.superuserUrl, '--prometheus', prometheus.url, ...sets].concat([
        '--output',
        'json',
      ]),
    );
    expect(after.code).toBe(4);
    const report = JSON.parse(after.stdout) as Report;
    expect(report.metrics.utilization_percent).toBeLessThan(70);
    expect(report.findings.find((f) => f.id === 'app-pool-still-full')!.message).toContain('api-2');

    await app.restart('api-2', { leak: false });
    const recovered = await runCli(
      ['verify', '--pg', server.superuserUrl, '--prometheus', prometheus.url, ...sets].concat([
        '--set',
        'verify_stable_for=3s',
        '--wait',
        '90s',
        '--interval',
        '1s',
      ]),
      { timeoutMs: 120_000 },
    );
    expect(recovered.code, recovered.stdout + recovered.stderr).toBe(0);
    expect(recovered.stdout).toContain('Recovered');
  }, 180_000);
});
