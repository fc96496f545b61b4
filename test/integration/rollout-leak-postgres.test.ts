/**
 * Issue 15 end to end: three replicas of a real application with real pools (pg.Pool), one of
 * them leaking, scraped by a real Prometheus, against a real PostgreSQL; the kubectl stand-in
 * drives the replicas as a cluster would (test/helpers/pool-app-control.ts). Diagnosed with the
 * database, Prometheus and kubectl together, the leak is fixed by the cluster action poolctl
 * suggests, and verify confirms it from the application's own metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startLeakRig, type LeakRig } from '../helpers/leak-rig.js';
import type { PoolApp } from '../helpers/pool-app.js';
import { startPoolAppControl, type PoolAppControl } from '../helpers/pool-app-control.js';
import type { PgServer } from '../helpers/postgres-server.js';
import type { PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { parseDiagnoseOptions, runDiagnose } from '../../src/commands/diagnose.js';
import type { Choice } from '../../src/io/prompter.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Report {
  status: string;
  exhausted?: string;
  metrics: Record<string, number>;
  findings: { id: string; message: string }[];
  suggested: { id: string; command: string }[];
  actions: {
    id: string;
    executed: boolean;
    before?: Record<string, number>;
    after?: Record<string, number>;
    commands?: { command: string[]; status: string }[];
  }[];
}

let rig: LeakRig;
let server: PgServer;
let app: PoolApp;
let prometheus: PrometheusServer;
let control: PoolAppControl;
let kubectl: KubectlStandin;

beforeAll(async () => {
  // 3 × (4 + 2) = 18 connections at most: the server keeps room whatever the pools do.
  rig = await startLeakRig({ poolSize: 4, maxOverflow: 2, poolTimeoutMs: 1000 });
  ({ server, app, prometheus } = rig);
  control = await startPoolAppControl(app);
  kubectl = writeKubectlStandin({ control: control.url });
  app.startTraffic(5);
  await rig.waitUntilFull(60_000);
}, 120_000);

afterAll(async () => {
  await control?.close();
  kubectl?.remove();
  await rig?.stop();
});

const targets = () => [
  '--pg',
  server.superuserUrl,
  '--prometheus',
  prometheus.url,
  '--kube-context',
  'standin',
  '--namespace',
  'shop',
  '--kubectl',
  kubectl.bin,
];
// The wait p95 over a short window, so that a recovery shows within seconds, not 5 minutes.
const sets = ['--set', 'wait_window=15s'];

describe('a leaking replica, fixed through the cluster', () => {
  it('diagnose with all three targets names the replica and suggests the cluster actions; it changes nothing', async () => {
    const r = await runCli(['diagnose', ...targets(), ...sets, '--output', 'json'], {
      env: kubectl.env,
    });
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.exhausted).toBe('application');
    const culprit = report.findings.filter((f) => f.id === 'app-pool-critical');
    expect(culprit.map((f) => f.message).join('\n')).toContain("Replica api-2's pool");
    const rollback = report.suggested.find((s) => s.id === 'rollback-app')!;
    expect(rollback.command).toContain(
      "--action rollback-app --pg 'postgres://postgres@127.0.0.1:",
    );
    expect(rollback.command).toContain('--kube-context standin --namespace shop');
    // Read-only: the cluster was asked for logs and history, and nothing was changed.
    const verbs = kubectl.calls().map((args) => args[2]);
    expect(verbs.length).toBeGreaterThan(0);
    for (const verb of verbs) expect(['logs', 'rollout', 'get']).toContain(verb);
    expect(
      kubectl
        .calls()
        .filter((a) => a[2] === 'rollout')
        .map((a) => a[3]),
    ).toEqual(['history']);
    expect(control.changes).toEqual([]);
  }, 60_000);

  it('the wizard offers the cluster actions first, each previewed before its question', async () => {
    const offered: string[][] = [];
    const prompter = new (class extends ScriptedPrompter {
      override async select<T extends string>(message: string, choices: Choice<T>[]) {
        offered.push(choices.map((c) => c.value));
        return super.select(message, choices);
      }
    })([
      { expect: 'Which mitigation?', answer: 'rollback-app' },
      { expect: 'Roll back the application: run this command?', answer: false },
      { expect: 'Next?', answer: 'done' },
    ]);
    const saved = { ...process.env };
    Object.assign(process.env, kubectl.env);
    try {
      const deps = inProcessDeps(prompter, {
        stateDir: mkdtempSync(join(tmpdir(), 'poolctl-wizard-')),
      });
      const outcome = await runDiagnose(
        parseDiagnoseOptions({
          pg: server.superuserUrl,
          prometheus: prometheus.url,
          kubeContext: 'standin',
          namespace: 'shop',
          kubectl: kubectl.bin,
          set: ['wait_window=15s'],
        }),
        deps,
      );
      prompter.verify();
      expect(offered[0]!.slice(0, 2)).toEqual(['restart-app', 'rollback-app']);
      expect(offered[0]!.at(-1)).toBe('none');
      // The preview came before the question: the exact command, in the namespace and context.
      expect(deps.io.stdout()).toContain(
        `${kubectl.bin} --context=standin --namespace=shop rollout undo deployment/api`,
      );
      // Declined: nothing changed, exit 5.
      expect(outcome.exitCode).toBe(5);
      expect(control.changes).toEqual([]);
    } finally {
      process.env = saved;
    }
  }, 60_000);

  it('restart-app restarts the replicas, but the leaky build fills its pool again', async () => {
    const r = await runCli(
      ['mitigate', ...targets(), ...sets, '--action', 'restart-app', '--yes', '--output', 'json'],
      { env: kubectl.env, timeoutMs: 120_000 },
    );
    expect([0, 4], r.stderr).toContain(r.code);
    expect(control.changes).toEqual(['restart']);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.commands!.map((c) => c.status)).toEqual(['done', 'confirmed']);
    // Same build: api-2 still leaks, and its fresh pool is full again within seconds.
    expect(app.replicas().find((x) => x.name === 'api-2')!.leak).toBe(true);
    await prometheus.waitForResult('db_pool_connections_active{pod="api-2"}', {
      until: (res) => res[0]?.value[1] === '6',
      timeoutMs: 30_000,
    });
    control.changes.length = 0;
  }, 120_000);

  it('rollback-app undoes the leaky build: the pool measured before → after, then verify --wait exits 0', async () => {
    kubectl.clearCalls();
    const r = await runCli(
      ['mitigate', ...targets(), ...sets, '--action', 'rollback-app', '--yes', '--output', 'json'],
      { env: kubectl.env, timeoutMs: 120_000 },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(control.changes).toEqual(['undo']);
    expect(app.replicas().map((x) => x.leak)).toEqual([false, false, false]);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.commands!.map((c) => c.status)).toEqual(['done', 'confirmed']);
    // Before: api-2's pool full; after: measured from the new pods' pools, with room.
    expect(action.before!.app_pool_utilization_percent).toBe(100);
    expect(action.after!.app_pool_utilization_percent).toBeLessThan(95);

    const verified = await runCli(
      ['verify', ...targets(), ...sets].concat([
        '--set',
        'verify_stable_for=3s',
        '--wait',
        '90s',
        '--interval',
        '1s',
      ]),
      { env: kubectl.env, timeoutMs: 120_000 },
    );
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain('Recovered');
  }, 240_000);

  it('scale-app down scales the running application; a scale-down is never blocked, even past the budget', async () => {
    const r = await runCli(
      ['mitigate', ...targets(), '--action', 'scale-app'].concat(
        // pool_size and max_overflow are not what scale-app changes: the Deployment's count.
        ['--set', 'replicas=2', '--set', 'pool_size=4', '--set', 'max_overflow=2'],
        ['--yes'],
      ),
      { env: kubectl.env, timeoutMs: 120_000 },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(
      '(2 + 1) × (20 + 10) = 90 > 37 usable − 10 buffer: oversubscribes the database by 53 connections past its 37 usable (RUNBOOK-006 Prevention 1); does not raise the demand (now 120): not blocked',
    );
    expect(control.changes.at(-1)).toBe('scale?replicas=2');
    expect(app.replicas().map((x) => x.name)).toEqual(['api-1', 'api-2']);
  }, 120_000);
});
