import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/expect.js';
import { freePort } from '../helpers/free-port.js';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import {
  startMetricsEndpoint,
  startPrometheus,
  type MetricsEndpoint,
  type PrometheusServer,
} from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

const run = promisify(execFile);
const EXPORTER = '/usr/bin/prometheus-postgres-exporter';
const PGBOUNCER = '/usr/sbin/pgbouncer';
const isRoot = process.getuid?.() === 0;

// prevent --emit against real things: the rules pass promtool and a real Prometheus evaluates
// them over the real postgres_exporter and a pool's metrics; the pgbouncer.ini starts a real
// PgBouncer through which psql reaches the database; no file carries a password.
describe('prevent --emit on PostgreSQL', () => {
  let server: PgServer;
  let dir: string;
  let appPassword: string;
  const children: ChildProcess[] = [];
  let prometheus: PrometheusServer | undefined;
  let pools: MetricsEndpoint | undefined;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 50 });
    appPassword = decodeURIComponent(new URL(server.appUrl).password);
    dir = mkdtempSync(join(tmpdir(), 'poolctl-emit-'));
    chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await prometheus?.stop();
    await pools?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const emit = (kind: string, ...rest: string[]) =>
    runCli(['prevent', '--pg', server.appUrl, '--emit', kind, ...rest]);

  it('alerts: promtool passes them, and Prometheus evaluates them over the real exporter', async () => {
    const file = join(dir, 'alerts.yml');
    // A warning threshold of 1% makes the server-side rule fire on the exporter's real numbers.
    const result = await emit('alerts', '-o', file, '--set', 'utilization_warning=1');
    expect(result.stderr).toContain(`wrote ${file}`);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('usable slots = max_connections 50 − superuser_reserved 3 = 47');
    const check = await run('/usr/bin/promtool', ['check', 'rules', file]);
    expect(check.stdout).toContain('SUCCESS: 7 rules found');

    const exporterPort = await freePort();
    const su = new URL(server.superuserUrl);
    const exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${exporterPort}`], {
      env: {
        DATA_SOURCE_NAME: `postgresql://${su.username}:${su.password}@127.0.0.1:${su.port}/postgres?sslmode=disable&application_name=postgres_exporter`,
      },
      stdio: 'ignore',
    });
    children.push(exporter);
    // One replica's pool at 29 of 30 (96.7%), the other's at 10 of 30.
    pools = await startMetricsEndpoint(
      [
        'db_pool_connections_active{pod="api-1"} 29',
        'db_pool_connections_max{pod="api-1"} 30',
        'db_pool_connections_active{pod="api-2"} 10',
        'db_pool_connections_max{pod="api-2"} 30',
      ].join('\n'),
    );
    prometheus = await startPrometheus({
      ruleFiles: [file],
      scrape: [
        { job: 'api', targets: [pools.target] },
        { job: 'postgres', targets: [`127.0.0.1:${exporterPort}`] },
      ],
    });
    type Rules = { data: { groups: { rules: { name: string; health: string }[] }[] } };
    let rules: Rules['data']['groups'][number]['rules'] = [];
    for (let i = 0; i < 60; i++) {
      const answer = (await prometheus.api('/api/v1/rules')) as Rules;
      rules = answer.data.groups.flatMap((g) => g.rules);
      if (rules.length === 7 && rules.every((r) => r.health === 'ok')) break;
      await sleep(250);
    }
    expect(rules.map((r) => [r.name, r.health])).toEqual(
      [
        'DatabaseConnectionPoolCritical',
        'DatabaseConnectionPoolWarning',
        'DatabaseConnectionPoolWaitHigh',
        'DatabaseServerConnectionsCritical',
        'DatabaseServerConnectionsWarning',
        'DatabaseLongRunningQueries',
        'DatabaseIdleInTransaction',
      ].map((name) => [name, 'ok']),
    );
    type Alerts = { data: { alerts: { labels: Record<string, string>; state: string }[] } };
    const firing = async () =>
      ((await prometheus!.api('/api/v1/alerts')) as Alerts).data.alerts.map(
        (a) => `${a.labels.alertname} ${a.labels.pod ?? a.labels.instance}`,
      );
    let alerts: string[] = [];
    for (let i = 0; i < 80; i++) {
      alerts = await firing();
      // Both groups evaluated (each on its own tick): the server's warning and the pool's alert.
      if (
        alerts.some((a) => a.startsWith('DatabaseServerConnectionsWarning')) &&
        alerts.some((a) => a.startsWith('DatabaseConnectionPoolCritical'))
      )
        break;
      await sleep(250);
    }
    expect(alerts).toContain('DatabaseConnectionPoolCritical api-1');
    expect(alerts).not.toContain('DatabaseConnectionPoolCritical api-2');
    expect(alerts).toContain(`DatabaseServerConnectionsWarning 127.0.0.1:${exporterPort}`);
  }, 60_000);

  it('pgbouncer: the emitted ini, given the userlist its comment says how to make, serves psql', async () => {
    const file = join(dir, 'pgbouncer.ini');
    const userlist = join(dir, 'userlist.txt');
    const port = await freePort();
    const result = await emit(
      'pgbouncer',
      '-o',
      file,
      '--set',
      `pgbouncer_port=${port}`,
      '--set',
      'pgbouncer_listen_addr=127.0.0.1',
      '--set',
      `pgbouncer_auth_file=${userlist}`,
    );
    expect(result.code).toBe(0);
    const ini = readFileSync(file, 'utf8');
    expect(ini).toContain(`appdb = host=127.0.0.1 port=${server.port} dbname=appdb`);
    expect(ini).toContain('pool_mode = transaction');
    expect(ini).toContain('auth_type = scram-sha-256');
    // 50 − 3 reserved − 10 buffer = 37 for the pools: the seed's 30 + 5 fit.
    expect(ini).toMatch(/default_pool_size = 30\nmin_pool_size = 10\nreserve_pool_size = 5\n/);
    expect(ini).toContain('max_db_connections = 37');
    // The userlist, made with the very query the file's comment gives.
    const query = /psql -Atc "(.*)" > /.exec(ini)![1]!.replace(/\\"/g, '"');
    writeFileSync(userlist, await server.psql(query), { mode: 0o600 });
    if (isRoot) {
      for (const f of [file, userlist]) chownSync(f, uid('postgres'), gid('postgres'));
    }
    const [cmd, args] = isRoot
      ? [
          'setpriv',
          ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', PGBOUNCER, file],
        ]
      : [PGBOUNCER, [file]];
    let log = '';
    const bouncer = spawn(cmd, args as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(bouncer);
    bouncer.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
    bouncer.stdout!.setEncoding('utf8').on('data', (c: string) => (log += c));
    let out = '';
    for (let i = 0; i < 40 && out === ''; i++) {
      await sleep(250);
      out = await run(
        '/usr/bin/psql',
        [
          '-X',
          '-Atc',
          'SELECT current_database() || 1',
          `postgresql://app@127.0.0.1:${port}/appdb`,
        ],
        { env: { ...process.env, PGPASSWORD: appPassword, PGCONNECT_TIMEOUT: '2' } },
      ).then(
        (r) => r.stdout.trim(),
        () => '',
      );
    }
    expect(out, log).toBe('appdb1');
    // A wrong password is refused by PgBouncer: the userlist really authenticates.
    const wrong = await run(
      '/usr/bin/psql',
      ['-X', '-Atc', 'SELECT 1', `postgresql://app@127.0.0.1:${port}/appdb`],
      {
        env: { ...process.env, PGPASSWORD: 'not-it', PGCONNECT_TIMEOUT: '2' },
      },
    ).then(
      () => 'accepted',
      (e: { stderr: string }) => e.stderr,
    );
    expect(wrong).toMatch(/password authentication failed|SASL authentication failed/);
  }, 60_000);

  it('pool-config: the capacity formula with its arithmetic, sized from the real slots', async () => {
    const result = await emit('pool-config', '--set', 'replicas=2', '--set', 'rollout_surge=50');
    expect(result.code).toBe(0);
    // 47 usable − 10 = 37; 2 + ceil(2 × 50%) = 3 instances; 3 × 30 = 90 > 37; floor(37/3) = 12.
    expect(result.stdout).toContain(
      'configured: (2 + 1) × (20 + 10) = 90 > 47 usable − 10 buffer: OVERSUBSCRIBED',
    );
    expect(result.stdout).toContain(
      'per instance: floor(37 / 3) = 12 → pool_size 8 + max_overflow 4',
    );
    expect(result.stdout).toContain('pool_size=8,');
    expect(result.stdout).toContain('maximum-pool-size: 12');
    expect(result.stdout).toContain('max: 12,');
    expect(result.stdout).toContain('leak-detection-threshold: 60000');
    expect(result.stderr).toContain('OVERSUBSCRIBED');
  });

  it('-o: refuses to replace a file without --yes (exit 5), replaces with it, and an unwritable place is exit 2', async () => {
    const file = join(dir, 'again.yml');
    expect((await emit('alerts', '-o', file)).code).toBe(0);
    writeFileSync(file, 'mine\n');
    const refused = await emit('alerts', '-o', file);
    expect(refused.code).toBe(5);
    expect(refused.stderr.trim()).toBe(
      `poolctl: -o ${file}: the file exists; pass --yes to replace it`,
    );
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
    const replaced = await emit('alerts', '-o', file, '--yes');
    expect(replaced.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('DatabaseConnectionPoolCritical');
    const nowhere = await emit('alerts', '-o', join(dir, 'no', 'such', 'x.yml'));
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--output json carries the emitted text, and no emitted file holds a password', async () => {
    const result = await emit('pool-config', '--output', 'json');
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as {
      command: string;
      emit: { kind: string; text: string };
    };
    expect(doc.command).toBe('prevent');
    expect(doc.emit.kind).toBe('pool-config');
    expect(doc.emit.text).toContain('## HikariCP');
    const suPassword = decodeURIComponent(new URL(server.superuserUrl).password);
    for (const kind of ['alerts', 'pgbouncer', 'pool-config']) {
      const out = await emit(kind);
      expect(out.code).toBe(0);
      expect(out.stdout).not.toContain(appPassword);
      expect(out.stdout).not.toContain(suPassword);
    }
    for (const name of ['alerts.yml', 'pgbouncer.ini']) {
      expect(readFileSync(join(dir, name), 'utf8')).not.toContain(appPassword);
    }
  });
});

// The application's numbers as prevent's audit reads them (appCapacityInputs): --set, then the
// Deployment through kubectl (here the stand-in), then Prometheus; what is left is the runbook's
// example, said in the file and on stderr.
describe("prevent --emit sized from the cluster: the kubectl stand-in's Deployment", () => {
  let server: PgServer;
  let kubectl: KubectlStandin;
  let dir: string;
  beforeAll(async () => {
    // max_connections 100, 3 reserved: 97 usable, 87 for the pools after the buffer of 10.
    server = await startPostgres({ maxConnections: 100 });
    kubectl = writeKubectlStandin();
    dir = mkdtempSync(join(tmpdir(), 'poolctl-emit-kube-'));
  });
  afterAll(async () => {
    kubectl?.remove();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cluster = ['--kube-context', 'standin', '--namespace', 'shop'];
  const emit = (kind: string, ...rest: string[]) =>
    runCli(['prevent', '--pg', server.appUrl, '--emit', kind, ...rest], {
      env: kubectl.env,
      timeoutMs: 60_000,
    });
  const defaultsWarning =
    /^poolctl: warning: pool-config: sized from the runbook's example defaults/m;

  it('6 replicas × (20 + 10), maxSurge 25%: pool-config sized for 6 replicas, every source named, no defaults warning', async () => {
    kubectl.setScenario({ deployment: { replicas: 6, maxSurge: '25%' } });
    const result = await emit('pool-config', ...cluster);
    expect(result.code, result.stderr).toBe(0);
    // (6 + ceil(6 × 25%)) × 30 = 240 > 87; floor(87 / 8) = 10 → 6 + 4, keeping 20:10.
    expect(result.stdout).toContain(
      "instances at peak: 6 replicas + ceil(6 × 25% the Deployment's maxSurge) = 8",
    );
    expect(result.stdout).toContain(
      'configured: (6 + 2) × (20 + 10) = 240 > 97 usable − 10 buffer: OVERSUBSCRIBED',
    );
    expect(result.stdout).toContain(
      'per instance: floor(87 / 8) = 10 → pool_size 6 + max_overflow 4; 8 × 10 = 80 ≤ 87',
    );
    expect(result.stdout).toContain(
      '# numbers from: replicas 6 (kubectl Deployment), surge 2 (kubectl Deployment), pool_size 20 (kubectl Deployment), max_overflow 10 (kubectl Deployment), usable 97 (the server), buffer 10 (runbook default)',
    );
    expect(result.stdout).toContain('pool_size=6,');
    expect(result.stdout).toContain('maximum-pool-size: 10');
    expect(result.stdout).not.toContain('RUNBOOK DEFAULTS');
    expect(result.stderr).not.toMatch(defaultsWarning);
    expect(result.stderr).toContain('OVERSUBSCRIBED');
    expect(kubectl.calls()).toContainEqual([
      '--context=standin',
      '--namespace=shop',
      'get',
      'deployment/api',
      '-o',
      'json',
    ]);

    const json = await emit('pool-config', ...cluster, '--output', 'json');
    const doc = JSON.parse(json.stdout) as { emit: { capacity: Record<string, unknown> } };
    expect(doc.emit.capacity).toMatchObject({
      replicas: 6,
      peak_instances: 8,
      pool_size: 6,
      max_overflow: 4,
      configured: { replicas: 6, surge: 2, pool_size: 20, max_overflow: 10 },
      sources: {
        replicas: 'kubectl',
        surge: 'kubectl',
        pool_size: 'kubectl',
        max_overflow: 'kubectl',
        usable: 'server',
        buffer: 'default',
      },
      defaults: [],
    });
  });

  it("pgbouncer: max_client_conn counts the Deployment's 8 instances at peak; -o names the sources", async () => {
    kubectl.setScenario({ deployment: { replicas: 6, maxSurge: 2 } });
    const file = join(dir, 'pgbouncer.ini');
    const result = await emit('pgbouncer', ...cluster, '-o', file);
    expect(result.code, result.stderr).toBe(0);
    const ini = readFileSync(file, 'utf8');
    expect(ini).toContain('max_client_conn = 240\n');
    expect(ini).toContain(
      ';; numbers from: replicas 6 (kubectl Deployment), surge 2 (kubectl Deployment),',
    );
    expect(result.stderr).toContain(
      `wrote ${file} (pgbouncer; numbers from: replicas 6 (kubectl Deployment)`,
    );
    expect(result.stderr).not.toContain('example defaults');
  });

  it('--set wins over the Deployment; a Deployment without maxSurge leaves only the surge a default, said', async () => {
    kubectl.setScenario({ deployment: { replicas: 6 } });
    const result = await emit('pool-config', ...cluster, '--set', 'replicas=2');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      '# numbers from: replicas 2 (--set), surge 1 (runbook default), pool_size 20 (kubectl Deployment)',
    );
    expect(result.stdout).toContain('# RUNBOOK DEFAULTS, not this setup: rollout_surge 25%;');
    const warnings = result.stderr.split('\n').filter((l) => defaultsWarning.test(l));
    expect(warnings).toEqual([
      "poolctl: warning: pool-config: sized from the runbook's example defaults, not this setup: rollout_surge 25%; pass --set rollout_surge=PERCENT for the real numbers",
    ]);
  });

  it('a Deployment that cannot be read: the defaults, the warning says why, the file is still written', async () => {
    kubectl.setScenario({ deployment: { replicas: 6 } });
    const file = join(dir, 'pool.md');
    const result = await emit('pool-config', ...cluster, '--set', 'deployment=nope', '-o', file);
    expect(result.code).toBe(0);
    const warning = result.stderr.split('\n').find((l) => defaultsWarning.test(l));
    expect(warning).toMatch(
      /replicas 3, pool_size 20, max_overflow 10, rollout_surge 25%; pass --set replicas=N --set pool_size=N --set max_overflow=N --set rollout_surge=PERCENT for the real numbers \(The application's Deployment, for the capacity formula: .*nope/,
    );
    expect(readFileSync(file, 'utf8')).toContain(
      'configured: (3 + 1) × (20 + 10) = 120 > 97 usable − 10 buffer',
    );
  });

  it('without cluster flags and without --set: one warning line naming the defaults, and the file says so', async () => {
    kubectl.clearCalls();
    const result = await runCli(['prevent', '--pg', server.appUrl, '--emit', 'pool-config']);
    expect(result.code).toBe(0);
    expect(result.stderr.split('\n').filter((l) => defaultsWarning.test(l))).toEqual([
      "poolctl: warning: pool-config: sized from the runbook's example defaults, not this setup: replicas 3, pool_size 20, max_overflow 10, rollout_surge 25%; pass --set replicas=N --set pool_size=N --set max_overflow=N --set rollout_surge=PERCENT for the real numbers",
    ]);
    expect(result.stdout).toContain(
      '# numbers from: replicas 3 (runbook default), surge 1 (runbook default), pool_size 20 (runbook default), max_overflow 10 (runbook default), usable 97 (the server), buffer 10 (runbook default)',
    );
    expect(result.stdout).toMatch(
      /# RUNBOOK DEFAULTS, not this setup: replicas 3, pool_size 20, max_overflow 10, rollout_surge 25% \(no Deployment read .*\); for the real numbers pass --set replicas=N/,
    );
    expect(kubectl.calls()).toEqual([]);
    // The alert rules use none of these numbers: no warning.
    const alerts = await runCli(['prevent', '--pg', server.appUrl, '--emit', 'alerts']);
    expect(alerts.stderr).toBe('');
  });
});

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
function gid(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
