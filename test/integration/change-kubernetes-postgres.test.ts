/**
 * Issue 15's changes through kubectl, against a real PostgreSQL with 37 usable connections
 * (max_connections 40 − 3 reserved) and the kubectl stand-in: the exact argv of each change, nothing
 * sent without --yes, and the capacity guard of RUNBOOK-006 Prevention 1 before a scale or a pool
 * size change.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseMitigateOptions, runMitigate } from '../../src/commands/mitigate.js';
import { readEvents } from '../helpers/expect.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Report {
  status: string;
  actions: {
    id: string;
    executed: boolean;
    declined: boolean;
    commands?: { command: string[]; status: string; detail?: string }[];
    capacity?: Record<string, unknown>;
  }[];
}

let server: PgServer;
let kubectl: KubectlStandin;

/** A Deployment as `kubectl get deployment/api -o json` prints it (the fields poolctl reads). */
function deployment(replicas: number, env: Record<string, string>) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'api', namespace: 'shop' },
    spec: {
      replicas,
      template: {
        spec: {
          containers: [
            { name: 'api', env: Object.entries(env).map(([name, value]) => ({ name, value })) },
          ],
        },
      },
    },
  };
}

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 40 });
  kubectl = writeKubectlStandin();
}, 120_000);

afterAll(async () => {
  kubectl?.remove();
  await server?.stop();
});

beforeEach(() => {
  kubectl.clearCalls();
  kubectl.setScenario({});
});

const GLOBALS = ['--context=prod', '--namespace=shop'];
const mitigate = (action: string, ...rest: string[]) =>
  runCli(
    [
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--kube-context',
      'prod',
      '--namespace',
      'shop',
      '--kubectl',
      kubectl.bin,
      '--action',
      action,
      ...rest,
    ],
    { env: kubectl.env },
  );
const changing = (calls: string[][]) => calls.filter((args) => !['get'].includes(args[2]!));

describe('restart-app and rollback-app', () => {
  beforeEach(() => kubectl.setScenario({ contexts: ['prod'] }));

  it('restart-app without --yes exits 5 and calls nothing; with --yes restarts, then waits for the rollout', async () => {
    const asked = await mitigate('restart-app');
    expect(asked.code).toBe(5);
    expect(asked.stdout + asked.stderr).toContain('would run 1 command');
    expect(kubectl.calls()).toEqual([]);

    const done = await mitigate('restart-app', '--yes', '--output', 'json');
    expect(done.code, done.stderr).toBe(0);
    expect(kubectl.calls()).toEqual([
      [...GLOBALS, 'rollout', 'restart', 'deployment/api'],
      [...GLOBALS, 'rollout', 'status', 'deployment/api'],
    ]);
    const action = (JSON.parse(done.stdout) as Report).actions[0]!;
    expect(action.commands!.map((c) => c.status)).toEqual(['done', 'confirmed']);
  }, 60_000);

  it('rollback-app undoes to the previous revision, or to --set revision=N, then waits', async () => {
    const previous = await mitigate('rollback-app', '--yes');
    expect(previous.code, previous.stderr).toBe(0);
    const named = await mitigate('rollback-app', '--set', 'revision=6', '--yes');
    expect(named.code, named.stderr).toBe(0);
    expect(kubectl.calls()).toEqual([
      [...GLOBALS, 'rollout', 'undo', 'deployment/api'],
      [...GLOBALS, 'rollout', 'status', 'deployment/api'],
      [...GLOBALS, 'rollout', 'undo', 'deployment/api', '--to-revision=6'],
      [...GLOBALS, 'rollout', 'status', 'deployment/api'],
    ]);
    // The preview named the exact command, the revision included.
    expect(named.stdout).toContain('rollout undo deployment/api --to-revision=6');
  }, 60_000);
});

describe('the capacity guard (RUNBOOK-006 Prevention 1) against 37 usable connections', () => {
  it('scale-app 6 × (20 + 10) with --yes: exit 5, the arithmetic, no scale sent', async () => {
    kubectl.setScenario({ contexts: ['prod'] });
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-cap-')), 't.jsonl');
    const r = await mitigate(
      'scale-app',
      ...['--set', 'replicas=6', '--set', 'pool_size=20', '--set', 'max_overflow=10'],
      ...['--yes', '--transcript', transcript],
    );
    expect(r.code, r.stderr).toBe(5);
    // The stand-in's Deployment runs 3 × (20 + 10) now; the rollout surge is Kubernetes' 25%.
    expect(r.stdout + r.stderr).toContain('(6 + 2) × (20 + 10) = 240 > 37 usable − 10 buffer');
    expect(r.stdout + r.stderr).toContain('--allow-oversubscribe');
    // The Deployment is read (the demand now, beside the demand after); nothing was sent.
    expect(kubectl.calls()).toEqual([[...GLOBALS, 'get', 'deployment/api', '-o', 'json']]);
    const events = readEvents(transcript);
    expect(events.some((e) => e.type === 'change.intent')).toBe(false);
    expect(events.find((e) => e.type === 'prompt')).toMatchObject({
      answer: 'no',
      answeredBy: '--yes',
    });
    // The postmortem has the arithmetic too.
    const md = await runCli(['transcript', 'export', transcript, '--format', 'md']);
    expect(md.code, md.stderr).toBe(0);
    expect(md.stdout).toContain(
      '**Capacity:** (6 + 2) × (20 + 10) = 240 &gt; 37 usable − 10 buffer: oversubscribes the database by 203 connections past its 37 usable',
    );
  }, 60_000);

  it('with --allow-oversubscribe beside --yes the scale is sent', async () => {
    kubectl.setScenario({ contexts: ['prod'] });
    const r = await mitigate(
      'scale-app',
      ...['--set', 'replicas=6', '--set', 'pool_size=20', '--set', 'max_overflow=10'],
      ...['--yes', '--allow-oversubscribe', '--output', 'json'],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(changing(kubectl.calls())).toEqual([
      [...GLOBALS, 'scale', 'deployment/api', '--replicas=6'],
      [...GLOBALS, 'rollout', 'status', 'deployment/api'],
    ]);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.capacity).toMatchObject({
      demand: 240,
      usable: 37,
      buffer: 10,
      oversubscribed: true,
      current: { demand: 120 },
      lowers_demand: false,
      // scale-app sets the replicas; the pool is the Deployment's, never a --set beside it.
      sources: { replicas: 'set', pool_size: 'kubectl', surge: 'default', usable: 'server' },
    });
  }, 60_000);

  it('a scale within capacity, the pool settings read from the deployment, is sent with --replicas=N', async () => {
    const env = { DATABASE_POOL_SIZE: '4', DATABASE_POOL_MAX_OVERFLOW: '2' };
    kubectl.setScenario({ contexts: ['prod'], get: { 'deployment/api': deployment(1, env) } });
    const r = await mitigate('scale-app', '--set', 'replicas=2', '--yes');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('(2 + 1) × (4 + 2) = 18 ≤ 37 usable − 10 buffer: fits');
    expect(kubectl.calls()).toEqual([
      [...GLOBALS, 'get', 'deployment/api', '-o', 'json'],
      [...GLOBALS, 'scale', 'deployment/api', '--replicas=2'],
      [...GLOBALS, 'rollout', 'status', 'deployment/api'],
    ]);
  }, 60_000);

  it('raise-pool-size reads the replica count from the deployment: 3 × (20 + 10) oversubscribes, exit 5', async () => {
    const env = { DATABASE_POOL_SIZE: '5', DATABASE_POOL_MAX_OVERFLOW: '2' };
    kubectl.setScenario({ contexts: ['prod'], get: { 'deployment/api': deployment(3, env) } });
    const r = await mitigate(
      'raise-pool-size',
      ...['--set', 'pool_size=20', '--set', 'max_overflow=10', '--yes'],
    );
    expect(r.code).toBe(5);
    expect(r.stdout + r.stderr).toContain('(3 + 1) × (20 + 10) = 120 > 37 usable − 10 buffer');
    expect(changing(kubectl.calls())).toEqual([]);
  }, 60_000);

  it('a scale-down is never blocked, even while still oversubscribed: no --allow-oversubscribe', async () => {
    const env = { DATABASE_POOL_SIZE: '20', DATABASE_POOL_MAX_OVERFLOW: '10' };
    kubectl.setScenario({ contexts: ['prod'], get: { 'deployment/api': deployment(6, env) } });
    const r = await mitigate('scale-app', '--set', 'replicas=3', '--yes');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(
      '(3 + 1) × (20 + 10) = 120 > 37 usable − 10 buffer: oversubscribes the database by 83 connections past its 37 usable (RUNBOOK-006 Prevention 1); does not raise the demand (now 240): not blocked',
    );
    expect(changing(kubectl.calls())).toEqual([
      [...GLOBALS, 'scale', 'deployment/api', '--replicas=3'],
      [...GLOBALS, 'rollout', 'status', 'deployment/api'],
    ]);
  }, 60_000);

  it('a smaller pool is never blocked either; the same pool on more replicas is', async () => {
    const env = { DATABASE_POOL_SIZE: '20', DATABASE_POOL_MAX_OVERFLOW: '10' };
    kubectl.setScenario({ contexts: ['prod'], get: { 'deployment/api': deployment(3, env) } });
    const smaller = await mitigate(
      'raise-pool-size',
      ...['--set', 'pool_size=8', '--set', 'max_overflow=2', '--yes'],
    );
    expect(smaller.code, smaller.stdout + smaller.stderr).toBe(0);
    expect(smaller.stdout).toContain('(3 + 1) × (8 + 2) = 40 > 37 usable − 10 buffer');
    expect(changing(kubectl.calls())[0]).toEqual([
      ...GLOBALS,
      'set',
      'env',
      'deployment/api',
      'DATABASE_POOL_SIZE=8',
      'DATABASE_POOL_MAX_OVERFLOW=2',
    ]);
    kubectl.clearCalls();
    const more = await mitigate('scale-app', '--set', 'replicas=4', '--yes');
    expect(more.code).toBe(5);
    expect(changing(kubectl.calls())).toEqual([]);
  }, 60_000);

  it('numbers it cannot read never let a scale through: exit 5, what is unknown and how to give it', async () => {
    // A deployment whose pool settings come from a ConfigMap: not readable from its spec.
    const doc = deployment(2, {});
    doc.spec.template.spec.containers[0]!.env = [
      { name: 'DATABASE_POOL_SIZE', valueFrom: { configMapKeyRef: { name: 'db', key: 'size' } } },
    ] as never;
    kubectl.setScenario({ contexts: ['prod'], get: { 'deployment/api': doc } });
    // A rise (2 → 3): the pool unknown, nothing proves it fits. (A scale-down would go through:
    // the pool per replica is the same before and after, whatever it is.)
    const r = await mitigate('scale-app', '--set', 'replicas=3', '--yes');
    expect(r.code).toBe(5);
    expect(r.stdout).toContain('(3 + 1) × (? + ?) = ? vs 37 usable − 10 buffer: cannot check');
    expect(r.stdout).toContain('DATABASE_POOL_SIZE comes from valueFrom');
    expect(r.stdout).toContain('--set pool_size=N');
    expect(changing(kubectl.calls())).toEqual([]);
  }, 60_000);
});

describe("scale-pgbouncer: the seed's configmap patch, then the pooler's restart", () => {
  const numbers = [
    ...['--set', 'pgbouncer_max_client_conn=400', '--set', 'pgbouncer_default_pool_size=40'],
    ...['--set', 'pgbouncer_port=6432'],
  ];
  beforeEach(() =>
    kubectl.setScenario({
      contexts: ['prod'],
      deployments: ['api', 'pgbouncer'],
      answers: [{ args: ['patch', 'configmap'], stdout: 'configmap/pgbouncer-config patched' }],
    }),
  );

  it('patches pgbouncer.ini with the given numbers and database line, restarts, waits', async () => {
    const databases = 'app = host=postgres-primary port=5432 dbname=app';
    const r = await mitigate(
      'scale-pgbouncer',
      ...numbers,
      ...['--set', `pgbouncer_databases=${databases}`, '--yes', '--output', 'json'],
    );
    expect(r.code, r.stderr).toBe(0);
    const calls = kubectl.calls();
    expect(calls.map((args) => args.slice(2, 4))).toEqual([
      ['patch', 'configmap'],
      ['rollout', 'restart'],
      ['rollout', 'status'],
    ]);
    const [patch, restart] = calls;
    expect(patch!.slice(0, 5)).toEqual([...GLOBALS, 'patch', 'configmap', 'pgbouncer-config']);
    const body = JSON.parse(patch![6]!) as { data: Record<string, string> };
    expect(body.data['pgbouncer.ini']).toBe(
      `[databases]\n${databases}\n\n[pgbouncer]\nlisten_addr = *\nlisten_port = 6432\nauth_file = /etc/pgbouncer/userlist.txt\npool_mode = transaction\nmax_client_conn = 400\ndefault_pool_size = 40`,
    );
    expect(restart).toEqual([...GLOBALS, 'rollout', 'restart', 'deployment/pgbouncer']);
  }, 60_000);

  it('the whole file is replaced: without the database line, or with one that breaks the JSON, exit 2 and nothing sent', async () => {
    const unset = await mitigate('scale-pgbouncer', ...numbers, '--yes');
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('--set pgbouncer_databases=VALUE');
    const quoted = await mitigate(
      'scale-pgbouncer',
      ...numbers,
      ...['--set', 'pgbouncer_databases=app = host="x"', '--yes'],
    );
    expect(quoted.code).toBe(2);
    expect(quoted.stderr).toContain('breaks the JSON of its patch');
    expect(kubectl.calls()).toEqual([]);
  }, 60_000);
});

describe('raise-max-connections on PostgreSQL: ALTER SYSTEM through the database target', () => {
  const raise = (...rest: string[]) =>
    runCli(
      ['mitigate', '--pg', server.superuserUrl, '--action', 'raise-max-connections', ...rest],
      {},
    );

  it('without --yes: the statement and the restart it needs are shown, nothing written, exit 5', async () => {
    const r = await raise('--set', 'new_max_connections=120');
    expect(r.code).toBe(5);
    expect(r.stdout).toContain('max_connections: 40 → 120');
    expect(r.stdout).toContain('ALTER SYSTEM SET max_connections = 120');
    expect(r.stdout).toContain('takes effect only after a restart');
    const rows = await server.psql(
      "SELECT count(*) FROM pg_file_settings WHERE name = 'max_connections' AND setting = '120'",
    );
    expect(rows).toContain('0');
  }, 60_000);

  it('with --yes: written to postgresql.auto.conf, read back, and said to wait for a restart', async () => {
    const r = await raise('--set', 'new_max_connections=150', '--yes', '--output', 'json');
    expect(r.code, r.stderr).toBe(0);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.commands).toEqual([
      {
        command: ['ALTER SYSTEM SET max_connections = 150'],
        status: 'confirmed',
        detail:
          'max_connections is 150 in the configuration; the server runs with 40 until PostgreSQL restarts',
      },
    ]);
    expect(await server.psql('SHOW max_connections')).toContain('40');
    expect(
      await server.psql(
        "SELECT setting FROM pg_file_settings WHERE sourcefile LIKE '%auto.conf' AND name = 'max_connections'",
      ),
    ).toContain('150');
  }, 60_000);

  it('a value that is not a number never reaches the server: exit 2', async () => {
    const r = await raise('--set', 'new_max_connections=1; DROP TABLE x', '--yes');
    expect(r.code).toBe(2);
  }, 60_000);
});

describe('the second, explicit confirmation of an oversubscription, at a terminal', () => {
  const oversubscribe = ['replicas=6', 'pool_size=20', 'max_overflow=10'];
  const run = async (answers: boolean[]) => {
    const prompter = new ScriptedPrompter([
      { expect: 'Scale the application: run this command?', answer: answers[0]! },
      ...(answers.length > 1
        ? [
            {
              expect:
                '(6 + 2) × (20 + 10) = 240 > 37 usable − 10 buffer: oversubscribes the database: run 1 command anyway?',
              answer: answers[1]!,
            },
          ]
        : []),
    ]);
    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-cap-tty-'));
    const saved = { ...process.env };
    Object.assign(process.env, kubectl.env);
    try {
      const deps = inProcessDeps(prompter, { stateDir, argv: ['poolctl', 'mitigate'] });
      const outcome = await runMitigate(
        parseMitigateOptions({
          pg: server.superuserUrl,
          kubeContext: 'prod',
          namespace: 'shop',
          kubectl: kubectl.bin,
          action: ['scale-app'],
          set: oversubscribe,
        }),
        deps,
      );
      prompter.verify();
      return { outcome, stdout: deps.io.stdout() };
    } finally {
      process.env = saved;
    }
  };

  it('yes to the first question, no to the second: nothing sent, exit 5', async () => {
    kubectl.setScenario({ contexts: ['prod'] });
    const { outcome, stdout } = await run([true, false]);
    expect(outcome.exitCode).toBe(5);
    expect(stdout).toContain(
      'capacity: (6 + 2) × (20 + 10) = 240 > 37 usable − 10 buffer: oversubscribes the database by 203 connections past its 37 usable',
    );
    expect(changing(kubectl.calls())).toEqual([]);
  }, 60_000);

  it('yes to both: the scale is sent', async () => {
    kubectl.setScenario({ contexts: ['prod'] });
    const { outcome } = await run([true, true]);
    expect(outcome.exitCode).toBe(0);
    expect(changing(kubectl.calls())[0]).toEqual([
      ...GLOBALS,
      'scale',
      'deployment/api',
      '--replicas=6',
    ]);
  }, 60_000);
});
