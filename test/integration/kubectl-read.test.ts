/**
 * The read side of the cluster (issue 15, item 2) through the built CLI: diagnose with a real
 * PostgreSQL, a real Prometheus scraping a replica that leaks, and the kubectl stand-in answering
 * kubectl-shaped JSON and logs. Every kubectl call is asserted as the exact argument array, with
 * the context and namespace; diagnose sends nothing but get / logs / rollout history; a missing
 * or hanging kubectl fails the cluster steps alone within the timeout.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startRisingPool, type RisingPool } from '../helpers/leak-rig.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import type { PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  metrics: Record<string, number>;
  findings: { id: string; severity: string; message: string; suggest: string[] }[];
  suggested: { id: string }[];
  steps: { id: string; status: string; rows?: Record<string, unknown>[]; error?: string }[];
}

let server: PgServer;
let rising: RisingPool;
let prometheus: PrometheusServer;
let kubectl: KubectlStandin;
/** When api-1 began to leak (ms). */
let riseStartedAt = 0;

const LOGS = [
  { pod: 'api-1', line: 'INFO GET /health 200' },
  {
    pod: 'api-1',
    line: 'ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00',
  },
  { pod: 'api-1', line: 'WARN possible connection leak: connection checked out 612s ago' },
  { pod: 'api-1', line: 'INFO user 42 logged in' },
  { pod: 'api-2', line: 'INFO GET /orders 200' },
  {
    pod: 'api-2',
    container: 'migrate',
    line: 'FATAL: remaining connection slots are reserved for non-replication superuser connections',
  },
];

/** Revision 7 rolled out 5 s before api-1 began to leak; revision 6 a day earlier. */
function scenario() {
  return {
    logs: LOGS,
    pods: [
      {
        name: 'api-1',
        ready: false,
        restarts: 3,
        lastRestart: { reason: 'Error', exitCode: 1, secondsAgo: 20 },
      },
      { name: 'api-2' },
    ],
    deployment: { replicas: 3, poolSize: 20, maxOverflow: 10 },
    revisions: [
      { revision: 6, createdSecondsAgo: 86_400, image: 'registry.example/api:1.6' },
      {
        revision: 7,
        createdAt: new Date(riseStartedAt - 5_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        image: 'registry.example/api:1.7',
        changeCause: 'deploy 1.7',
      },
    ],
  };
}

beforeAll(async () => {
  kubectl = writeKubectlStandin();
  server = await startPostgres();
  // api-1's checked-out connections of 30: flat at 4 for 8 s, then leaking 2 every 600 ms.
  rising = await startRisingPool({ perTick: 2, flatMs: 8_000 });
  ({ prometheus, riseStartedAt } = rising);
}, 120_000);

afterEach(() => {
  kubectl.clearCalls();
  kubectl.setScenario({});
});

afterAll(async () => {
  kubectl?.remove();
  await rising?.stop();
  await server?.stop();
});

const CLUSTER = ['--context=standin', '--namespace=shop'];
const diagnose = (extra: string[]) =>
  runCli(
    [
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--prometheus',
      prometheus.url,
      '--kube-context',
      'standin',
      '--namespace',
      'shop',
      '--set',
      'trend_window=40s',
      ...extra,
    ],
    { env: kubectl.env, timeoutMs: 60_000 },
  );
const step = (report: Report, id: string) => report.steps.find((s) => s.id === id)!;

describe('diagnose reads the cluster with the database and Prometheus', () => {
  it('logs per pod, pods, the Deployment, rollouts against the trend; only reads, each with context and namespace', async () => {
    kubectl.setScenario(scenario());
    const r = await diagnose(['--kubectl', kubectl.bin, '--output', 'json']);
    expect(r.stderr).not.toMatch(/internal error/);
    const report = JSON.parse(r.stdout) as Report;

    // The exact argument arrays, in order: nothing that changes the cluster.
    expect(kubectl.calls()).toEqual([
      [...CLUSTER, 'get', 'deployment/api', '-o', 'json'],
      [...CLUSTER, 'get', 'pods', '-l', 'app=api', '-o', 'json'],
      [...CLUSTER, 'logs', '-l', 'app=api', '--tail=500', '--all-containers=true', '--prefix=true'],
      [...CLUSTER, 'rollout', 'history', 'deployment/api'],
      [...CLUSTER, 'get', 'replicasets', '-l', 'app=api', '-o', 'json'],
    ]);
    for (const args of kubectl.calls()) {
      const verb = args.slice(2, 4).join(' ');
      expect(
        ['get', 'logs', 'rollout history'].some((v) => verb.startsWith(v)),
        verb,
      ).toBe(true);
    }

    // The database and the application's pools were read beside the cluster.
    expect(step(report, 'utilization').status).toBe('ok');
    expect(step(report, 'app-pool').status).toBe('ok');
    for (const id of [
      'app-deployment',
      'app-pods',
      'app-logs-leaks',
      'recent-changes',
      'app-rollouts',
    ])
      expect(step(report, id).status, id).toBe('ok');

    // The Deployment's numbers, for the capacity arithmetic: 3 × (20 + 10) = 90.
    expect(report.metrics).toMatchObject({
      app_replicas: 3,
      app_pool_size: 20,
      app_max_overflow: 10,
      app_connections_max: 90,
    });

    // The logs: per pod, the matching lines and their patterns; unrelated lines left out.
    expect(step(report, 'app-logs-leaks').rows).toEqual([
      {
        pod: 'api-1',
        matches: 2,
        by_pattern: 'pool exhausted 1, QueuePool 1, timeout 1, leak 1',
        lines: [LOGS[1]!.line, LOGS[2]!.line],
      },
      {
        pod: 'api-2',
        matches: 1,
        by_pattern: 'remaining connection slots 1',
        lines: [LOGS[5]!.line],
      },
    ]);
    expect(r.stdout).not.toMatch(/GET \/health|GET \/orders|logged in/);
    expect(report.findings.find((f) => f.id === 'logs-pool-errors')?.message).toBe(
      'Pod api-1 logged 2 lines about its pool or connections (pool exhausted 1, QueuePool 1, timeout 1, leak 1; pods with such lines: api-1, api-2)',
    );

    // The pods and their readiness.
    expect(step(report, 'app-pods').rows).toEqual([
      expect.objectContaining({ pod: 'api-1', ready: '0/1', restarts: 3, status: 'Running' }),
      expect.objectContaining({ pod: 'api-2', ready: '1/1', restarts: 0 }),
    ]);
    expect(report.findings.find((f) => f.id === 'pod-not-ready')?.message).toMatch(
      /^Pod api-1 is not ready \(0\/1 containers ready, Running; not ready: api-1\)/,
    );
    expect(report.findings.find((f) => f.id === 'pod-restarted')?.message).toMatch(
      /^Pod api-1 restarted 3 times, the last: Error \(exit 1\) 2\ds ago/,
    );

    // rollout history parsed, and the rollout set against the pool's trend.
    expect(step(report, 'recent-changes').rows).toEqual([
      { revision: 7, change_cause: 'deploy 1.7' },
      { revision: 6, change_cause: '' },
    ]);
    const rollouts = step(report, 'app-rollouts').rows!;
    expect(rollouts.map((row) => row.revision)).toEqual([7, 6]);
    const after = rollouts[0]!.fill_after_rollout_s as number;
    // Rolled out 5 s before the leak began; Prometheus sees the start within a scrape or two.
    expect(after).toBeGreaterThanOrEqual(2);
    expect(after).toBeLessThanOrEqual(9);
    expect(rollouts[1]!.fill_after_rollout_s).toBeNull();
    const lead = report.findings.find((f) => f.id === 'rollout-before-fill')!;
    expect(lead.message).toBe(
      `The pool began to fill ${after}s after revision 7 rolled out (${String(rollouts[0]!.created)}, image registry.example/api:1.7): a leaky build is the likely cause; roll it back (a restart refills as fast as it leaks)`,
    );
    expect(lead.suggest).toEqual(['rollback-app']);
    expect(report.suggested.map((s) => s.id)).toContain('rollback-app');
    expect(r.code).toBe(4); // api-1's pool is full
  }, 90_000);

  it('a rollout long before the rise is not named', async () => {
    kubectl.setScenario({ ...scenario(), revisions: [{ revision: 7, createdSecondsAgo: 7_200 }] });
    const r = await diagnose(['--kubectl', kubectl.bin, '--output', 'json']);
    const report = JSON.parse(r.stdout) as Report;
    expect(step(report, 'app-rollouts').rows![0]).toMatchObject({ revision: 7, age: '2h' });
    expect(report.findings.map((f) => f.id)).not.toContain('rollout-before-fill');
  }, 90_000);

  it('the human view: counts per pod, then the matching lines prefixed by pod', async () => {
    kubectl.setScenario(scenario());
    const r = await diagnose(['--kubectl', kubectl.bin]);
    expect(r.stdout).toMatch(/api-1\s+2\s+pool exhausted 1, QueuePool 1, timeout 1, leak 1/);
    expect(r.stdout).toContain(`api-1: ${LOGS[2]!.line}`);
    expect(r.stdout).toContain(`api-2: ${LOGS[5]!.line}`);
    expect(r.stdout).not.toMatch(/GET \/health|logged in/);
    expect(r.stdout).toMatch(/The pool began to fill \d+s after revision 7 rolled out/);
  }, 90_000);
});

describe('a kubectl that is missing or hangs fails the cluster steps alone', () => {
  const clusterSteps = [
    'app-deployment',
    'app-pods',
    'app-logs-leaks',
    'recent-changes',
    'app-rollouts',
  ];

  it('missing: one line naming --kubectl, the other cluster steps skipped, the rest of the run goes on', async () => {
    const r = await diagnose(['--kubectl', '/nonexistent/kubectl', '--output', 'json']);
    const report = JSON.parse(r.stdout) as Report;
    expect(step(report, 'app-deployment').error).toBe(
      'kubectl not found: /nonexistent/kubectl (no such file): pass --kubectl PATH',
    );
    for (const id of clusterSteps.slice(1)) {
      expect(step(report, id)).toMatchObject({
        status: 'failed',
        error: 'skipped: kubectl not found (/nonexistent/kubectl) earlier in this run',
      });
    }
    expect(step(report, 'utilization').status).toBe('ok');
    expect(step(report, 'app-pool-trend').status).toBe('ok');
    expect(report.metrics.utilization_percent).toBeTypeOf('number');
    expect(kubectl.calls()).toEqual([]);
  }, 90_000);

  it('hanging: one timeout, not one per step; the reads before it kept', async () => {
    kubectl.setScenario({ ...scenario(), answers: [{ args: ['logs'], hang: true }] });
    const r = await diagnose([
      '--kubectl',
      kubectl.bin,
      '--statement-timeout',
      '2s',
      '--output',
      'json',
    ]);
    const report = JSON.parse(r.stdout) as Report;
    expect(step(report, 'app-deployment').status).toBe('ok');
    expect(step(report, 'app-pods').status).toBe('ok');
    expect(step(report, 'app-logs-leaks')).toMatchObject({
      status: 'failed',
      error:
        'kubectl logs -l app=api --tail=500 --all-containers=true --prefix=true timed out after 2s (stopped)',
    });
    for (const id of ['recent-changes', 'app-rollouts'])
      expect(step(report, id).error).toBe(
        'skipped: kubectl timed out after 2s earlier in this run',
      );
    expect(step(report, 'utilization').status).toBe('ok');
    // Only the calls before the hang, and the hung one, reached kubectl.
    expect(kubectl.calls().map((args) => args[2])).toEqual(['get', 'get', 'logs']);
    expect(r.durationMs).toBeLessThan(20_000);
  }, 90_000);
});
