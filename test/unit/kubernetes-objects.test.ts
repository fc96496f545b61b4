import { describe, expect, it } from 'vitest';
import {
  deploymentOf,
  deploymentRow,
  kubeAge,
  logMatchesOf,
  podsOf,
  replicaSetsOf,
  rolloutHistoryOf,
} from '../../src/targets/kubernetes-objects.js';
import { fillStart, setAgainstTrend } from '../../src/wizard/rollout.js';

// kubectl's outputs parsed in TypeScript. The JSON here is kubectl 1.32's shape, trimmed to the
// fields read; the stand-in (test/helpers/kubectl-standin.ts) answers the same shape end to end.

const NOW = Date.parse('2026-12-04T13:00:00Z');
const at = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();

const SEED_PATTERNS = {
  'pool exhausted':
    "pool\\b.*\\b(exhausted|full|limit|timed? ?out)|exhausted.*\\bpool|(could not|unable to|failed to|cannot|can't) (get|acquire|obtain|check ?out) (a )?(db |database )?connection",
  QueuePool: 'QueuePool',
  timeout: '\\btime(d)?[ -]?out',
  leak: 'leak',
  transaction: 'transaction',
  'too many connections': 'too many (connections|clients)',
  'remaining connection slots': 'remaining connection slots',
};

describe('logMatchesOf: the seeds’ patterns counted per pod', () => {
  const logs = [
    '[pod/api-1/api] INFO GET /health 200',
    '[pod/api-1/api] ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00',
    '[pod/api-1/api] ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00',
    '[pod/api-1/sidecar] WARN possible connection leak: checked out 612s ago',
    '[pod/api-2/api] INFO GET /orders 200',
    '[pod/api-2/api] INFO user logged in',
    '[pod/api-3/api] ERROR FATAL: remaining connection slots are reserved for non-replication superuser connections',
    '[pod/api-3/api] ERROR 1040 (HY000): Too many connections',
    '[pod/api-3/api] WARN transaction rolled back after 30s',
    '',
  ].join('\n');

  it('keeps the matching lines, counts them per pod and per pattern, and leaves the rest out', () => {
    const rows = logMatchesOf(logs, SEED_PATTERNS);
    expect(rows).toEqual([
      {
        pod: 'api-1',
        matches: 3,
        by_pattern: 'pool exhausted 2, QueuePool 2, timeout 2, leak 1',
        lines: [
          'ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00',
          'ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00',
          'WARN possible connection leak: checked out 612s ago',
        ],
      },
      {
        pod: 'api-3',
        matches: 3,
        by_pattern: 'transaction 1, too many connections 1, remaining connection slots 1',
        lines: [
          'ERROR FATAL: remaining connection slots are reserved for non-replication superuser connections',
          'ERROR 1040 (HY000): Too many connections',
          'WARN transaction rolled back after 30s',
        ],
      },
      // A pod that logged only unrelated lines: there, with nothing matched.
      { pod: 'api-2', matches: 0, by_pattern: '', lines: [] },
    ]);
    const all = rows.flatMap((r) => r.lines).join('\n');
    expect(all).not.toMatch(/GET \/health|user logged in/);
  });

  it('tail keeps each pod’s last matches; the count stays all of them', () => {
    const [api1] = logMatchesOf(logs, SEED_PATTERNS, 1);
    expect(api1).toMatchObject({ pod: 'api-1', matches: 3 });
    expect(api1!.lines).toEqual(['WARN possible connection leak: checked out 612s ago']);
  });

  it('lines without --prefix go to one unknown pod; control characters are stripped', () => {
    const rows = logMatchesOf('\u001b[31mpool exhausted\u001b[0m\u0007\nfine\n', SEED_PATTERNS);
    expect(rows).toEqual([
      { pod: '(unknown)', matches: 1, by_pattern: 'pool exhausted 1', lines: ['pool exhausted'] },
    ]);
  });
});

describe('podsOf: kubectl get pods -o json', () => {
  const pod = (name: string, status: object, extra: object = {}) => ({
    kind: 'Pod',
    metadata: { name, creationTimestamp: at(7200), ...extra },
    spec: { containers: [{ name: 'api' }, { name: 'proxy' }] },
    status: { phase: 'Running', startTime: at(3600), ...status },
  });
  const doc = {
    kind: 'List',
    items: [
      pod('api-1', {
        containerStatuses: [
          { name: 'api', ready: true, restartCount: 0, state: { running: {} } },
          { name: 'proxy', ready: true, restartCount: 0, state: { running: {} } },
        ],
      }),
      pod('api-2', {
        containerStatuses: [
          {
            name: 'api',
            ready: false,
            restartCount: 4,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: {
              terminated: { reason: 'Error', exitCode: 3, finishedAt: at(180) },
            },
          },
          {
            name: 'proxy',
            ready: true,
            restartCount: 1,
            state: { running: {} },
            lastState: { terminated: { reason: 'OOMKilled', exitCode: 137, finishedAt: at(5000) } },
          },
        ],
      }),
      pod('api-3', { phase: 'Pending' }, { deletionTimestamp: at(5) }),
    ],
  };

  it('name, ready x/y, restarts, status as kubectl shows it, age, and the last restart', () => {
    expect(podsOf(JSON.stringify(doc), NOW)).toEqual([
      {
        pod: 'api-1',
        ready: '2/2',
        unready: 0,
        restarts: 0,
        status: 'Running',
        age: '60m',
        last_restart_s: null,
        last_restart: '',
      },
      {
        pod: 'api-2',
        ready: '1/2',
        unready: 1,
        restarts: 5,
        status: 'CrashLoopBackOff',
        age: '60m',
        last_restart_s: 180,
        last_restart: 'Error (exit 3) 3m ago',
      },
      {
        pod: 'api-3',
        ready: '0/2',
        unready: 2,
        restarts: 0,
        status: 'Terminating',
        age: '60m',
        last_restart_s: null,
        last_restart: '',
      },
    ]);
  });

  it('output that is not JSON: one line naming the command', () => {
    expect(() => podsOf('NAME READY STATUS\napi-1 1/1 Running', NOW)).toThrowError(
      'kubectl get pods: expected JSON (-o json), got "NAME READY STATUS"',
    );
  });
});

describe('deploymentOf: replicas and the pool settings from the environment', () => {
  const deployment = (env: object[], replicas?: number, extra: object[] = []) =>
    JSON.stringify({
      kind: 'Deployment',
      metadata: { name: 'api', annotations: { 'deployment.kubernetes.io/revision': '7' } },
      spec: {
        ...(replicas !== undefined && { replicas }),
        template: { spec: { containers: [{ name: 'api', image: 'api:1.7', env }, ...extra] } },
      },
      status: { readyReplicas: 2, updatedReplicas: 3 },
    });

  it('replicas × (pool_size + max_overflow) from spec.replicas and the env', () => {
    const facts = deploymentOf(
      deployment(
        [
          { name: 'DATABASE_POOL_SIZE', value: '20' },
          { name: 'DATABASE_POOL_MAX_OVERFLOW', value: '10' },
        ],
        6,
        [{ name: 'proxy', image: 'envoy:1', env: [{ name: 'X', value: '1' }] }],
      ),
    );
    expect(facts).toEqual({
      name: 'api',
      replicas: 6,
      readyReplicas: 2,
      updatedReplicas: 3,
      container: 'api',
      poolSize: 20,
      maxOverflow: 10,
      why: {},
      maxSurge: null,
      revision: 7,
      images: ['api:1.7', 'envoy:1'],
    });
    expect(deploymentRow(facts)).toMatchObject({ replicas: 6, ready: '2/6', connections_max: 180 });
  });

  it('a value from a ConfigMap is not read as 0: null, and no total', () => {
    const facts = deploymentOf(
      deployment([{ name: 'DATABASE_POOL_SIZE', valueFrom: { configMapKeyRef: { key: 'x' } } }]),
    );
    expect(facts).toMatchObject({ replicas: 1, poolSize: null, maxOverflow: null });
    expect(facts.why.poolSize).toBe(
      'DATABASE_POOL_SIZE comes from valueFrom (a ConfigMap or Secret) in container api, not readable here',
    );
    expect(deploymentRow(facts).connections_max).toBeNull();
  });

  it("a sidecar's pool variables are not added in: the app container's are read", () => {
    // `kubectl set env deployment/api DATABASE_POOL_SIZE=…` without -c writes every container.
    const pool = [
      { name: 'DATABASE_POOL_SIZE', value: '20' },
      { name: 'DATABASE_POOL_MAX_OVERFLOW', value: '10' },
    ];
    const sidecar = { name: 'pgbouncer', image: 'pgbouncer:1', env: [...pool] };
    expect(deploymentOf(deployment(pool, 4, [sidecar]))).toMatchObject({
      container: 'api',
      poolSize: 20,
      maxOverflow: 10,
    });
    // The sidecar first: the container named like the Deployment still wins.
    const doc = JSON.parse(deployment(pool, 4)) as {
      spec: { template: { spec: { containers: object[] } } };
    };
    doc.spec.template.spec.containers.unshift({
      ...sidecar,
      env: [{ name: 'DATABASE_POOL_SIZE', value: '5' }],
    });
    expect(deploymentOf(JSON.stringify(doc))).toMatchObject({ container: 'api', poolSize: 20 });
  });

  it('the default-container annotation names the app container; else the first that sets the pool', () => {
    const doc = (names: string[], annotation?: string) =>
      JSON.stringify({
        kind: 'Deployment',
        metadata: { name: 'shop' },
        spec: {
          replicas: 2,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '50%' } },
          template: {
            metadata: {
              annotations: annotation
                ? { 'kubectl.kubernetes.io/default-container': annotation }
                : {},
            },
            spec: {
              containers: names.map((name, i) => ({
                name,
                env:
                  name === 'envoy' ? [] : [{ name: 'DATABASE_POOL_SIZE', value: String(10 + i) }],
              })),
            },
          },
        },
      });
    expect(deploymentOf(doc(['envoy', 'web', 'worker']))).toMatchObject({
      container: 'web',
      poolSize: 11,
      maxOverflow: null,
      maxSurge: '50%',
    });
    expect(deploymentOf(doc(['envoy', 'web', 'worker'])).why.maxOverflow).toBe(
      'DATABASE_POOL_MAX_OVERFLOW is not in the environment of container web',
    );
    expect(deploymentOf(doc(['envoy', 'web', 'worker'], 'worker'))).toMatchObject({
      container: 'worker',
      poolSize: 12,
    });
    // The annotation names the app even when it sets no pool: unknown, not the sidecar's.
    expect(deploymentOf(doc(['web', 'envoy'], 'envoy'))).toMatchObject({
      container: 'envoy',
      poolSize: null,
    });
  });

  it('the surge: a count, a percent, none for Recreate, null when the spec does not say', () => {
    const withStrategy = (strategy: object) =>
      deploymentOf(
        JSON.stringify({ kind: 'Deployment', metadata: { name: 'api' }, spec: { strategy } }),
      ).maxSurge;
    expect(withStrategy({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } })).toBe(1);
    expect(withStrategy({ type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%' } })).toBe('25%');
    expect(withStrategy({ type: 'Recreate' })).toBe(0);
    expect(withStrategy({})).toBeNull();
  });

  it('anything but a Deployment is an error', () => {
    expect(() => deploymentOf(JSON.stringify({ kind: 'Service' }))).toThrowError(
      'kubectl get deployment: expected a Deployment, got Service',
    );
  });
});

describe('replicaSetsOf and rolloutHistoryOf', () => {
  const rs = (name: string, revision: string, secondsAgo: number, owner = 'api') => ({
    kind: 'ReplicaSet',
    metadata: {
      name,
      creationTimestamp: at(secondsAgo).replace(/\.\d+Z$/, 'Z'),
      annotations: {
        'deployment.kubernetes.io/revision': revision,
        'kubernetes.io/change-cause': `deploy ${revision}`,
      },
      ownerReferences: [{ kind: 'Deployment', name: owner }],
    },
    spec: { template: { spec: { containers: [{ image: `api:1.${revision}` }] } } },
    status: { replicas: 3, readyReplicas: 3 },
  });

  it("the Deployment's revisions, newest first, with when each rolled out; others left out", () => {
    const rows = replicaSetsOf(
      JSON.stringify({
        kind: 'List',
        items: [rs('api-6', '6', 90_000), rs('api-7', '7', 840), rs('worker-2', '2', 60, 'worker')],
      }),
      'api',
      NOW,
    );
    expect(rows.map((r) => [r.revision, r.age, r.image, r.change_cause])).toEqual([
      [7, '14m', 'api:1.7', 'deploy 7'],
      [6, '25h', 'api:1.6', 'deploy 6'],
    ]);
    expect(rows[0]!.created_at).toBe(Math.round(NOW / 1000) - 840);
  });

  it('rollout history: revisions and change causes', () => {
    const text =
      'deployment.apps/api \nREVISION  CHANGE-CAUSE\n6         <none>\n7         kubectl set image deployment/api api=api:1.7\n\n';
    expect(rolloutHistoryOf(text)).toEqual([
      { revision: 7, change_cause: 'kubectl set image deployment/api api=api:1.7' },
      { revision: 6, change_cause: '' },
    ]);
    expect(() => rolloutHistoryOf('error: something else')).toThrowError(
      'kubectl rollout history: no revisions in its output ("error: something else")',
    );
  });
});

describe('a rollout set against the pool trend', () => {
  const t0 = 1_800_000_000;
  /** One sample a minute: flat at 20 % for 10 minutes, then a leak rising 8 points a minute. */
  const leak: [number, number][] = Array.from({ length: 20 }, (_, i) => [
    t0 + i * 60,
    i <= 10 ? 20 + (i % 2) : Math.min(100, 20 + (i - 10) * 8),
  ]);

  it('fillStart: the last sample at the level the rise began from', () => {
    expect(fillStart(leak)).toBe(t0 + 10 * 60);
    // No rise: nothing began.
    expect(fillStart(leak.map(([t]) => [t, 40]))).toBeUndefined();
    // Rising from the first sample: it began before the window, when is not known.
    expect(fillStart(leak.slice(10))).toBeUndefined();
  });

  it('names the newest revision before the rise, and how long before', () => {
    const rows = [
      { revision: 8, created_at: t0 + 15 * 60 }, // after the rise began: not the cause
      { revision: 7, created_at: t0 + 6 * 60 },
      { revision: 6, created_at: t0 - 86_400 },
    ];
    setAgainstTrend(rows, [{ trend: 'leak', points: leak }]);
    expect(
      rows.map((r) => [
        r.revision,
        (r as Record<string, unknown>).fill_after_rollout_s,
        (r as Record<string, unknown>).fill_after_rollout,
      ]),
    ).toEqual([
      [8, null, ''],
      [7, 240, '4m'],
      [6, null, ''],
    ]);
  });

  it('without a trend (no Prometheus), no revision is named', () => {
    const rows = [{ revision: 7, created_at: t0 }];
    setAgainstTrend(rows, undefined);
    expect(rows[0]).toMatchObject({ fill_after_rollout_s: null, fill_after_rollout: '' });
  });

  it('kubeAge reads like kubectl', () => {
    expect([kubeAge(5), kubeAge(240), kubeAge(7200), kubeAge(200_000), kubeAge(undefined)]).toEqual(
      ['5s', '4m', '2h', '2d', 'unknown'],
    );
  });
});
