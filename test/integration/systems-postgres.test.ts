/**
 * The systems around the database as targets: Prometheus (real, scraping a metrics endpoint with
 * the seed's pool metrics) and kubectl (a stand-in that records its arguments), next to a real
 * PostgreSQL, through the built CLI. Steps whose target is given run; the others are listed by
 * hand with the flag; a change through kubectl goes through the one destructive path.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readEvents, sleep } from '../helpers/expect.js';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import {
  startMetricsEndpoint,
  startPrometheus,
  type MetricsEndpoint,
  type PrometheusServer,
} from '../helpers/prometheus-server.js';
import { runCli, startCli } from '../helpers/run-cli.js';
import { freePort } from '../helpers/free-port.js';

interface Report {
  status: string;
  exhausted?: string;
  checked?: string[];
  metrics: Record<string, number>;
  findings: { id: string; message: string }[];
  suggested: { id: string; command: string }[];
  steps: { id: string; status: string; rows?: Record<string, unknown>[]; error?: string }[];
  manual: { step: string; command: string; flag?: string }[];
  actions: {
    id: string;
    executed: boolean;
    declined: boolean;
    command?: string;
    commands?: { command: string[]; status: string; detail?: string }[];
  }[];
  transcript: string;
}

let server: PgServer;
let prometheus: PrometheusServer;
let metrics: MetricsEndpoint;
let kubectl: KubectlStandin;
let waits: MetricsEndpoint;
let ticker: NodeJS.Timeout;
/** Where the pool's waits land: all under 50 ms, or all over 2 s. */
let waitMode: 'fast' | 'slow' = 'fast';
let observed = 0;

/** A wait-time histogram whose counters grow every tick, so that rate() has something to rate. */
function waitHistogram(): string {
  const fast = waitMode === 'fast' ? observed : 0;
  return ['api-1', 'api-2']
    .flatMap((pod) => [
      `db_pool_wait_time_seconds_bucket{pod="${pod}",le="0.05"} ${fast}`,
      `db_pool_wait_time_seconds_bucket{pod="${pod}",le="2"} ${fast}`,
      `db_pool_wait_time_seconds_bucket{pod="${pod}",le="+Inf"} ${observed}`,
    ])
    .join('\n');
}

/** Checked-out connections per replica, of 30 each: api-1 starts full (it leaks). */
const checkedOut = { 'api-1': 30, 'api-2': 4 };
function pools(): string {
  return Object.entries(checkedOut)
    .flatMap(([pod, active]) => [
      `db_pool_connections_active{pod="${pod}"} ${active}`,
      `db_pool_connections_idle{pod="${pod}"} ${30 - active}`,
      `db_pool_connections_max{pod="${pod}"} 30`,
    ])
    .join('\n');
}

beforeAll(async () => {
  server = await startPostgres();
  metrics = await startMetricsEndpoint(pools());
  waits = await startMetricsEndpoint(waitHistogram());
  ticker = setInterval(() => {
    observed += 10;
    waits.set(waitHistogram());
  }, 200);
  prometheus = await startPrometheus({
    scrape: [
      { job: 'api', targets: [metrics.target] },
      { job: 'waits', targets: [waits.target] },
    ],
  });
  await prometheus.waitForResult('db_pool_connections_active', {
    until: (r) => r.length === 2,
  });
  kubectl = writeKubectlStandin();
}, 120_000);

afterAll(async () => {
  clearInterval(ticker);
  await waits?.close();
  kubectl?.remove();
  await prometheus?.stop();
  await metrics?.close();
  await server?.stop();
});

beforeEach(() => kubectl.clearCalls());

const systems = () => [
  '--prometheus',
  prometheus.url,
  '--kube-context',
  'standin',
  '--namespace',
  'shop',
  '--kubectl',
  kubectl.bin,
];

/**
 * The cluster flags alone: a change with Prometheus given is also judged by the application's
 * pools afterwards (this file's api-1 stays full); change-kubernetes-postgres.test.ts and
 * rollout-leak-postgres.test.ts prove that side with a real application.
 */
const cluster = () => systems().slice(2);

describe('diagnose with the systems around the database', () => {
  it('runs the PromQL and kubectl steps against the given targets, with context and namespace', async () => {
    const r = await runCli(
      ['diagnose', '--pg', server.superuserUrl, ...systems(), '--output', 'json'],
      { env: kubectl.env },
    );
    expect(r.stderr).not.toMatch(/internal error/);
    const report = JSON.parse(r.stdout) as Report;
    const pools = report.steps.find((s) => s.id === 'app-pool')!;
    expect(pools.status).toBe('ok');
    expect(pools.rows).toEqual([
      expect.objectContaining({ replica: 'api-1', utilization_percent: 100, active: 30, max: 30 }),
      expect.objectContaining({
        replica: 'api-2',
        utilization_percent: 13.33,
        active: 4,
        idle: 26,
      }),
    ]);
    // One replica's pool is full while the server has room: critical, that replica named, the
    // application's side said to be the exhausted one, and a restart suggested.
    expect(r.code).toBe(4);
    expect(report.status).toBe('critical');
    expect(report.exhausted).toBe('application');
    expect(report.checked).toEqual(['database', 'application']);
    expect(report.metrics.app_pool_utilization_percent).toBe(100);
    expect(report.metrics.utilization_percent).toBeLessThan(90);
    const culprit = report.findings.find((f) => f.id === 'app-pool-critical')!;
    expect(culprit.message).toContain("Replica api-1's pool is at 100%");
    expect(report.suggested.map((s) => s.id)).toContain('restart-app');
    const logs = report.steps.find((s) => s.id === 'app-logs-leaks')!;
    expect(logs.status).toBe('ok');
    // Only the lines the seeds' patterns match, counted per pod kubectl prefixed them with
    // (test/integration/kubectl-read.test.ts goes through them one by one).
    expect(logs.rows!.length).toBeGreaterThan(0);
    for (const row of logs.rows!)
      for (const line of row.lines as string[]) expect(line).not.toMatch(/GET \/(health|orders)/);
    const call = kubectl.calls().find((args) => args.includes('logs'))!;
    expect(call).toEqual(expect.arrayContaining(['--context=standin', '--namespace=shop']));
    expect(call).toEqual(expect.arrayContaining(['-l', 'app=api']));
    // Every step ran: nothing is left by hand but what poolctl can never do (git log).
    expect(report.manual.map((m) => m.step)).toEqual(['recent-db-code-changes']);
  }, 60_000);

  it('without them, lists those steps by hand with real quoted values and the flag to pass', async () => {
    const r = await runCli(
      [
        'diagnose',
        '--pg',
        server.superuserUrl,
        '--set',
        'label_selector=app=api; touch /tmp/x',
        '--output',
        'json',
      ],
      { env: kubectl.env },
    );
    const report = JSON.parse(r.stdout) as Report;
    const pools = report.manual.find((m) => m.step === 'app-pool')!;
    expect(pools.command).toContain('<PROMETHEUS_URL>');
    expect(pools.flag).toMatch(/--prometheus URL/);
    const logs = report.manual.find((m) => m.step === 'app-logs-leaks')!;
    expect(logs.command).toContain(`'app=api; touch /tmp/x'`);
    expect(logs.flag).toMatch(/--kube-context/);
    // kubectl on PATH is never used unless asked for.
    expect(kubectl.calls()).toEqual([]);
  }, 60_000);

  it('an unreachable Prometheus fails its steps alone; the database steps still run', async () => {
    const port = await freePort();
    const r = await runCli(
      [
        'diagnose',
        '--pg',
        server.superuserUrl,
        '--prometheus',
        `http://127.0.0.1:${port}`,
        '--output',
        'json',
      ],
      {},
    );
    const report = JSON.parse(r.stdout) as Report;
    expect(report.steps.find((s) => s.id === 'utilization')!.status).toBe('ok');
    const pools = report.steps.find((s) => s.id === 'app-pool')!;
    expect(pools.status).toBe('failed');
    expect(pools.error).toMatch(/127\.0\.0\.1/);
    expect(pools.error).not.toContain('\n');
    // Asked for and silent: the application's side is not measured, so no verdict of health.
    expect(r.code).toBe(4);
    expect(report.status).toBe('unknown');
    expect(report.checked).toEqual(['database']);
  }, 60_000);
});

describe('a change through kubectl goes through the destructive path', () => {
  it('refuses restart-app without a Kubernetes target: exit 2, the flag, the command by hand, nothing run', async () => {
    const r = await runCli(
      ['mitigate', '--pg', server.superuserUrl, '--action', 'restart-app', '--yes'],
      { env: kubectl.env },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--kube-context/);
    expect(r.stderr).toContain('kubectl rollout restart deployment/api');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(kubectl.calls()).toEqual([]);
  }, 60_000);

  it('with --yes: intent on disk before kubectl runs, the restart, the rollout waited for, each recorded', async () => {
    // A kubectl that first copies the transcript as it is at the call: the intent must be there.
    const dir = mkdtempSync(join(tmpdir(), 'poolctl-kube-'));
    const transcriptPath = join(dir, 'incident.jsonl');
    const seen = join(dir, 'seen.txt');
    const wrapper = join(dir, 'kubectl');
    writeFileSync(
      wrapper,
      `#!/bin/sh\necho "--- $*" >> '${seen}'\ncat '${transcriptPath}' >> '${seen}'\nexec '${kubectl.bin}' "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    const r = await runCli(
      [
        'mitigate',
        '--pg',
        server.superuserUrl,
        '--kube-context',
        'standin',
        '--kubectl',
        wrapper,
        '--action',
        'restart-app',
        '--yes',
        '--transcript',
        transcriptPath,
        '--output',
        'json',
      ],
      { env: kubectl.env },
    );
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    const action = report.actions[0]!;
    expect(action.executed).toBe(true);
    expect(action.commands!.map((c) => c.status)).toEqual(['done', 'confirmed']);
    expect(action.commands![0]!.command).toEqual([
      wrapper,
      '--context=standin',
      'rollout',
      'restart',
      'deployment/api',
    ]);
    expect(kubectl.calls().map((args) => args.slice(1, 3))).toEqual([
      ['rollout', 'restart'],
      ['rollout', 'status'],
    ]);
    const before = readFileSync(seen, 'utf8').split('--- ')[1]!;
    expect(before).toContain('"type":"change.intent"');
    expect(before).toContain('rollout","restart","deployment/api"');
    const types = readEvents(transcriptPath).map((e) => e.type);
    expect(types.indexOf('change.intent')).toBeLessThan(types.indexOf('change.outcome'));
  }, 60_000);

  it('--dry-run shows the command and runs nothing; without --yes and a terminal, exit 5', async () => {
    const base = ['mitigate', '--pg', server.superuserUrl, ...cluster(), '--action', 'restart-app'];
    const dry = await runCli([...base, '--dry-run'], { env: kubectl.env });
    expect(dry.stdout + dry.stderr).toContain('would run 1 command');
    const asked = await runCli(base, { env: kubectl.env });
    expect(asked.code).toBe(5);
    expect(kubectl.calls()).toEqual([]);
  }, 60_000);

  it('a kubectl that fails: the command failed in one line, no wait, exit 4', async () => {
    kubectl.setScenario({
      answers: [
        {
          args: ['rollout', 'restart'],
          stderr: 'error: deployments.apps "api" not found\n',
          exitCode: 1,
        },
      ],
    });
    try {
      const r = await runCli(
        [
          'mitigate',
          '--pg',
          server.superuserUrl,
          ...cluster(),
          '--action',
          'restart-app',
          '--yes',
          '--output',
          'json',
        ],
        { env: kubectl.env },
      );
      expect(r.code).toBe(4);
      const action = (JSON.parse(r.stdout) as Report).actions[0]!;
      expect(action.commands).toEqual([
        expect.objectContaining({
          status: 'failed',
          detail: expect.stringContaining('deployments.apps "api" not found'),
        }),
      ]);
      expect(kubectl.calls().filter((a) => a.includes('status'))).toEqual([]);
    } finally {
      kubectl.setScenario({});
    }
  }, 60_000);

  it('a change needs a named context and the numbers it sets: exit 2, nothing run', async () => {
    const byNamespace = await runCli(
      [
        'mitigate',
        '--pg',
        server.superuserUrl,
        '--namespace',
        'shop',
        '--kubectl',
        kubectl.bin,
      ].concat(['--action', 'restart-app', '--yes']),
      { env: kubectl.env },
    );
    expect(byNamespace.code).toBe(2);
    expect(byNamespace.stderr).toMatch(/--kube-context NAME/);
    const noReplicas = await runCli(
      ['mitigate', '--pg', server.superuserUrl, ...cluster(), '--action', 'scale-app', '--yes'],
      { env: kubectl.env },
    );
    expect(noReplicas.code).toBe(2);
    expect(noReplicas.stderr).toContain('--set replicas=N');
    expect(kubectl.calls()).toEqual([]);
  }, 60_000);

  it('scale-app with --set replicas: the scale, then the rollout waited for', async () => {
    // The pool settings the capacity guard multiplies come from the deployment's environment:
    // (5 + 2 surge) × (1 + 1) = 14 ≤ 27 usable − 10 buffer.
    const env = [
      { name: 'DATABASE_POOL_SIZE', value: '1' },
      { name: 'DATABASE_POOL_MAX_OVERFLOW', value: '1' },
    ];
    const spec = { replicas: 3, template: { spec: { containers: [{ name: 'api', env }] } } };
    kubectl.setScenario({ get: { 'deployment/api': { kind: 'Deployment', spec } } });
    const r = await runCli(
      ['mitigate', '--pg', server.superuserUrl, ...cluster(), '--action', 'scale-app'].concat([
        '--set',
        'replicas=5',
        '--yes',
        '--output',
        'json',
      ]),
      { env: kubectl.env },
    );
    kubectl.setScenario({});
    expect(r.code).toBe(0);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.commands!.map((c) => [c.command.slice(3), c.status])).toEqual([
      [['scale', 'deployment/api', '--replicas=5'], 'done'],
      [['rollout', 'status', 'deployment/api'], 'confirmed'],
    ]);
  }, 60_000);

  it('route-reads is confirmed only when the Service reads back selecting the replicas', async () => {
    const run = () =>
      runCli(
        ['mitigate', '--pg', server.superuserUrl, ...cluster(), '--action', 'route-reads'].concat([
          '--set',
          'read_service=postgres-read',
          '--yes',
          '--output',
          'json',
        ]),
        { env: kubectl.env },
      );
    try {
      const patched = { args: ['patch', 'service'], stdout: 'service/postgres-read patched' };
      kubectl.setScenario({ answers: [patched, { args: ['get', 'service'], stdout: 'replica' }] });
      const good = await run();
      expect(good.code).toBe(0);
      kubectl.setScenario({ answers: [patched, { args: ['get', 'service'], stdout: 'primary' }] });
      const bad = await run();
      expect(bad.code).toBe(4);
      const action = (JSON.parse(bad.stdout) as Report).actions[0]!;
      expect(action.commands!.at(-1)).toMatchObject({
        status: 'not-confirmed',
        detail: 'expected ^replica$, read primary',
      });
    } finally {
      kubectl.setScenario({});
    }
  }, 60_000);

  it('Ctrl-C during a kubectl command lets it finish and records it, then exits 130 without the wait', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-kube-int-')), 't.jsonl');
    kubectl.setScenario({
      answers: [{ args: ['rollout', 'restart'], delayMs: 1500, stdout: 'restarted' }],
    });
    try {
      const started = startCli(
        ['mitigate', '--pg', server.superuserUrl, ...cluster(), '--action', 'restart-app'].concat([
          '--yes',
          '--transcript',
          transcript,
        ]),
        { env: kubectl.env },
      );
      for (let i = 0; i < 3000 && !kubectl.calls().some((a) => a.includes('restart')); i++)
        await sleep(2);
      started.child.kill('SIGINT');
      expect(await started.exited).toBe(130);
      const outcomes = readEvents(transcript).filter((e) => e.type === 'change.outcome');
      expect(outcomes.map((e) => e.status)).toEqual(['done']);
      expect(kubectl.calls().filter((a) => a.includes('status'))).toEqual([]);
    } finally {
      kubectl.setScenario({});
    }
  }, 60_000);

  it('restarts the application while the database refuses every connection; health unknown, exit 4', async () => {
    const port = await freePort();
    const r = await runCli(
      [
        'mitigate',
        '--pg',
        `postgres://postgres@127.0.0.1:${port}/postgres`,
        ...cluster(),
        '--action',
        'restart-app',
        '--yes',
        '--output',
        'json',
      ],
      { env: kubectl.env },
    );
    expect(r.code).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('unknown');
    expect(report.actions[0]!.commands!.map((c) => c.status)).toEqual(['done', 'confirmed']);
  }, 60_000);
});

describe("verify with Prometheus: the application's pool wait is a check of the recovery", () => {
  const P95 =
    'histogram_quantile(0.95, sum(rate(db_pool_wait_time_seconds_bucket[5m])) by (le, pod)) * 1000';
  const verify = (url: string) =>
    runCli(['verify', '--pg', server.superuserUrl, '--prometheus', url, '--output', 'json']);

  it("a server with room is not a recovery while a replica's pool is still full; a slow wait fails too", async () => {
    waitMode = 'fast';
    await prometheus.waitForResult(P95, {
      until: (r) => r.length === 2 && r.every((x) => Number(x.value[1]) < 100),
    });
    const stillFull = await verify(prometheus.url);
    expect(stillFull.code).toBe(4);
    const full = JSON.parse(stillFull.stdout) as Report;
    expect(full.metrics.utilization_percent).toBeLessThan(70);
    expect(full.findings.find((f) => f.id === 'app-pool-still-full')!.message).toContain('api-1');
    expect(full.checked).toEqual(['database', 'application']);

    checkedOut['api-1'] = 3;
    metrics.set(pools());
    await prometheus.waitForResult('db_pool_connections_active{pod="api-1"}', {
      until: (r) => r[0]?.value[1] === '3',
    });
    const fast = await verify(prometheus.url);
    expect(fast.code).toBe(0);
    const step = (JSON.parse(fast.stdout) as Report).steps.find((s) => s.id === 'verify-app-pool')!;
    expect(step.rows!.map((row) => row.replica)).toEqual(['api-1', 'api-2']);

    waitMode = 'slow';
    await prometheus.waitForResult(P95, {
      until: (r) => Number(r[0]?.value[1]) >= 100,
      timeoutMs: 60_000,
    });
    const slow = await verify(prometheus.url);
    expect(slow.code).toBe(4);
    expect(slow.stdout).toContain('still-waiting');
  }, 120_000);

  it('a replica with no observations in the window (NaN p95) cannot be called recovered', async () => {
    // Its pool is fine (2 of 30); only its wait p95 has no number.
    const idle = await startMetricsEndpoint(
      [
        ...['0.05', '2', '+Inf'].map(
          (le) => `db_pool_wait_time_seconds_bucket{pod="api-9",le="${le}"} 0`,
        ),
        'db_pool_connections_active{pod="api-9"} 2',
        'db_pool_connections_idle{pod="api-9"} 28',
        'db_pool_connections_max{pod="api-9"} 30',
      ].join('\n'),
    );
    const quiet = await startPrometheus({ scrape: [{ job: 'idle', targets: [idle.target] }] });
    try {
      await quiet.waitForResult(P95, { until: (r) => r[0]?.value[1] === 'NaN' });
      const r = await verify(quiet.url);
      expect(r.code).toBe(4);
      expect((JSON.parse(r.stdout) as Report).status).toBe('unknown');
      expect(r.stdout).toContain('replica api-9: no number (NaN) for wait_p95_ms');
    } finally {
      await quiet.stop();
      await idle.close();
    }
  }, 120_000);

  it('pools without the replica label are not folded into one healthy-looking row', async () => {
    // Two pools, one full and one quiet, neither labelled with `pod`: one row would average them.
    const full = await startMetricsEndpoint(
      'db_pool_connections_active 10\ndb_pool_connections_idle 0\ndb_pool_connections_max 10',
    );
    const calm = await startMetricsEndpoint(
      'db_pool_connections_active 15\ndb_pool_connections_idle 15\ndb_pool_connections_max 30',
    );
    const unlabelled = await startPrometheus({
      scrape: [{ job: 'api', targets: [full.target, calm.target] }],
    });
    try {
      await unlabelled.waitForResult('db_pool_connections_max', { until: (r) => r.length === 2 });
      const r = await runCli(
        ['diagnose', '--pg', server.superuserUrl, '--prometheus', unlabelled.url].concat([
          '--output',
          'json',
        ]),
      );
      expect(r.code).toBe(4);
      expect(r.stdout).toContain('series without the replica label');
      // With the label the series do carry, each pool is its own row, and the full one is critical.
      const byInstance = await runCli(
        ['diagnose', '--pg', server.superuserUrl, '--prometheus', unlabelled.url].concat([
          '--set',
          'replica_label=instance',
          '--output',
          'json',
        ]),
      );
      const report = JSON.parse(byInstance.stdout) as Report;
      expect(report.metrics.app_pool_utilization_percent).toBe(100);
      expect(report.findings.find((f) => f.id === 'app-pool-critical')!.message).toContain(
        full.target,
      );
    } finally {
      await unlabelled.stop();
      await full.close();
      await calm.close();
    }
  }, 120_000);

  it('a Prometheus with no such series cannot call the pool recovered: unknown, exit 4', async () => {
    const empty = await startPrometheus();
    try {
      const r = await verify(empty.url);
      expect(r.code).toBe(4);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.status).toBe('unknown');
      expect(report.findings.map((f) => f.message).join('\n')).toMatch(/no series/);
    } finally {
      await empty.stop();
    }
  }, 120_000);
});
