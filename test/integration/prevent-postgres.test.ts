import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import {
  describePrevent,
  DRILL_SETS,
  findingIds as ids,
  type PreventReport,
} from '../helpers/prevent-cases.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions } from '../helpers/sessions.js';

type Report = PreventReport;

describePrevent(
  {
    name: 'PostgreSQL',
    start: () => startPostgres({ maxConnections: 40 }),
    urlFlag: '--pg',
    // The owner of appdb may ALTER DATABASE: the application's account applies and checks.
    applyUrl: (server) => server.appUrl,
    stockFindings: ['missing-statement-timeout', 'missing-idle-in-transaction-timeout'],
    statementMessage: /^statement_timeout is off for new sessions on appdb /,
    // pg_stat_statements is not installed.
    nPlusOneUnreadable: /could not be read/,
    async checkMore(result, report) {
      expect(result.stderr).toBe('');
      expect(report.status).toBe('critical');
      expect(report.root_causes.map((c) => c.id)).toContain('missing-timeout');
    },
    settings: { statement: 'statement_timeout', idle: 'idle_in_transaction_session_timeout' },
    // What a new session on appdb gets: its own SHOW.
    readSetting: async (server, name) => (await server.psql(`SHOW ${name}`, 'appdb')).trim(),
    applied: { statement: '30s', idle: '30s' },
    drill: {
      hold: async (server) => {
        const idle = await holdSessions(server.appUrl, { idle: 4, appNames: ['leaky-api'] });
        const inTx = await holdSessions(server.appUrl, { idleInTx: 2, appNames: ['slow-worker'] });
        return { close: async () => (await idle.close(), await inTx.close()) };
      },
      waitMs: 1500,
      url: (server) => server.appUrl,
      leakApp: 'leaky-api',
      txApp: 'slow-worker',
      async more(report, { server }) {
        const leak = report.root_causes.find((c) => c.id === 'connection-leak');
        expect(leak).toMatchObject({ application: 'leaky-api' });
        expect(leak?.evidence).toMatch(
          /leaky-api .* 4 sessions idle longer than leak_idle_after 1s/,
        );
        const tx = report.root_causes.find((c) => c.id === 'long-transaction');
        expect(tx).toMatchObject({ application: 'slow-worker' });
        expect(report.root_causes.filter((c) => c.application === 'slow-worker')).toHaveLength(1);

        // diagnose names them too: its steps already hold the evidence.
        const diagnosed = await runCli([
          'diagnose',
          '--pg',
          server().superuserUrl,
          ...DRILL_SETS,
          '--output',
          'json',
        ]);
        const causes = (JSON.parse(diagnosed.stdout) as Report).root_causes;
        expect(causes).toContainEqual(
          expect.objectContaining({ id: 'connection-leak', application: 'leaky-api' }),
        );
        expect(causes).toContainEqual(
          expect.objectContaining({ id: 'long-transaction', application: 'slow-worker' }),
        );
      },
    },
  },
  {
    beforeApply({ server, prevent: preventAt }) {
      const prevent = (...args: string[]) => preventAt(server().appUrl, ...args);
      it('--apply without --yes and without a terminal changes nothing and exits 5', async () => {
        const result = await prevent('--apply', 'statement-timeout', '--output', 'json');
        expect(result.code).toBe(5);
        expect(
          (await server().psql('SELECT count(*) FROM pg_db_role_setting WHERE setrole = 0')).trim(),
        ).toBe('0');
      });
    },
    after({ server, prevent: preventAt }) {
      const prevent = (...args: string[]) => preventAt(server().appUrl, ...args);
      it('quotes the target database as the server does: a name with a quote and a space', async () => {
        await server().psql('CREATE DATABASE "we""ird db" OWNER app');
        const url = server().url('app', new URL(server().appUrl).password, 'we"ird db');
        const dry = await runCli([
          'prevent',
          '--pg',
          url,
          '--apply',
          'statement-timeout',
          '--dry-run',
          '--no-color',
        ]);
        expect(dry.stdout).toContain('ALTER DATABASE "we""ird db" SET statement_timeout = 30000');
        expect(dry.stderr).toBe('');
        expect((await server().psql('SHOW statement_timeout', 'we"ird db')).trim()).toBe('0');
        const applied = await runCli([
          'prevent',
          '--pg',
          url,
          '--apply',
          'statement-timeout',
          '--yes',
          '--output',
          'json',
        ]);
        expect((JSON.parse(applied.stdout) as Report).actions[0]).toMatchObject({
          executed: true,
          setting: { after: '30' },
        });
        expect((await server().psql('SHOW statement_timeout', 'we"ird db')).trim()).toBe('30s');
      });

      it("never reads a client-given statement_timeout (poolctl's own) as the database's", async () => {
        // The postgres database has no ALTER DATABASE setting (appdb has one by now).
        const sql = readFileSync('runbooks/postgres/prevent-settings.sql', 'utf8');
        const client = new pg.Client({
          connectionString: server().superuserUrl,
          statement_timeout: 10_000,
        });
        await client.connect();
        try {
          const { rows } = await client.query(sql);
          expect(rows.find((r) => r.setting === 'statement_timeout')).toMatchObject({
            value: 'unknown',
            number: null,
          });
        } finally {
          await client.end();
        }
      });

      it('bad input: one line, exit 2, nothing done', async () => {
        const unknown = await prevent('--apply', 'kill-idle', '--yes');
        expect(unknown.code).toBe(2);
        expect(unknown.stderr).toMatch(
          /^poolctl: --apply kill-idle: not a prevent fix of postgres\/pool-exhausted \(known: statement-timeout, idle-in-transaction-timeout\)\n$/,
        );
        const both = await prevent('--check', '--apply', 'statement-timeout');
        expect(both.code).toBe(2);
        expect(both.stderr.trim().split('\n')).toHaveLength(1);
        const json = await prevent('--apply', 'nope', '--output', 'json');
        expect(JSON.parse(json.stdout).error).toMatchObject({ code: 2, kind: 'usage' });
        // --emit writes a file; an --apply beside it would silently apply nothing.
        const emitApply = await prevent(
          '--emit',
          'alerts',
          '--apply',
          'statement-timeout',
          '--yes',
        );
        expect(emitApply.code).toBe(2);
        expect(emitApply.stdout).toBe('');
        expect(emitApply.stderr).toMatch(
          /^poolctl: --emit writes a file .*--apply without --emit\n$/,
        );
      });

      it('the capacity formula from --set: oversubscribed is critical', async () => {
        const result = await prevent(
          '--set',
          'replicas=3',
          '--set',
          'pool_size=20',
          '--set',
          'max_overflow=10',
          '--output',
          'json',
        );
        const report = JSON.parse(result.stdout) as Report;
        // (3 + ceil(3 × 25%)) × (20 + 10) = 120 > 37 usable − 10 buffer.
        expect(report.capacity).toMatchObject({ demand: 120, usable: 37, buffer: 10 });
        expect(report.findings).toContainEqual(
          expect.objectContaining({ id: 'capacity-oversubscribed', severity: 'critical' }),
        );
        expect(result.code).toBe(4);
      });

      it("verify that ends critical names the runbook's escalation: severity, time, team, channels", async () => {
        const held = await holdSessions(server().appUrl, { idle: 30 });
        try {
          const result = await runCli([
            'verify',
            '--pg',
            server().superuserUrl,
            '--output',
            'json',
          ]);
          expect(result.code).toBe(4);
          expect(JSON.parse(result.stdout).escalation).toEqual({
            reason: 'verify ends critical',
            severity: 'P0',
            response_time: '2m',
            team: 'On-Call Engineer',
            contact: 'PagerDuty escalation',
            levels: [
              {
                severity: 'P0',
                response_time: '2m',
                team: 'On-Call Engineer',
                contact: 'PagerDuty escalation',
              },
              {
                severity: 'P1',
                response_time: '15m',
                team: 'Database Team',
                contact: '@database-team (Slack)',
              },
            ],
            channels: ['@database-team', '@devops-team', '#database-alerts'],
          });
          const human = await runCli(['verify', '--pg', server().superuserUrl, '--no-color']);
          expect(human.stdout).toContain('P1: Database Team within 15m (@database-team (Slack))');
          expect(human.stdout).toContain('post in: @database-team, @devops-team, #database-alerts');
        } finally {
          await held.close();
        }
        // A healthy verify names nobody.
        const healthy = await runCli(['verify', '--pg', server().superuserUrl, '--output', 'json']);
        expect(JSON.parse(healthy.stdout).escalation).toBeUndefined();
      });
    },
  },
);

describe("prevent's capacity audit from the cluster: the kubectl stand-in's Deployment", () => {
  let server: PgServer;
  let kubectl: KubectlStandin;
  beforeAll(async () => {
    // PostgreSQL's stock max_connections 100, 3 reserved: 97 usable.
    server = await startPostgres({ maxConnections: 100 });
    kubectl = writeKubectlStandin();
  });
  afterAll(async () => {
    kubectl?.remove();
    await server?.stop();
  });

  const prevent = (...args: string[]) =>
    runCli(
      [
        'prevent',
        '--pg',
        server.appUrl,
        '--kube-context',
        'standin',
        '--namespace',
        'shop',
        ...args,
      ],
      { env: kubectl.env, timeoutMs: 60_000 },
    );

  it('6 replicas × (20 + 10) from the Deployment: capacity-oversubscribed, exit 4 with --check', async () => {
    kubectl.setScenario({ deployment: { replicas: 6 } });
    const result = await prevent('--check');
    expect(result.code, result.stderr).toBe(4);
    const report = JSON.parse(result.stdout) as Report;
    // (6 + ceil(6 × 25%)) × (20 + 10) = 240 > 97 usable − 10 buffer.
    expect(report.capacity).toMatchObject({
      replicas: 6,
      surge: 2,
      pool_size: 20,
      max_overflow: 10,
      demand: 240,
      usable: 97,
      buffer: 10,
      oversubscribed: true,
      sources: {
        replicas: 'kubectl',
        pool_size: 'kubectl',
        max_overflow: 'kubectl',
        usable: 'server',
        buffer: 'default',
      },
    });
    const finding = report.findings.find((f) => f.id === 'capacity-oversubscribed')!;
    expect(finding.severity).toBe('critical');
    expect(finding.message).toMatch(/^\(6 \+ 2\) × \(20 \+ 10\) = 240 > 97 usable − 10 buffer: /);
    expect(finding.message).toContain(
      'replicas 6 (kubectl Deployment), surge 2 (runbook default), pool_size 20 (kubectl Deployment), max_overflow 10 (kubectl Deployment), usable 97 (the server)',
    );
    expect(kubectl.calls()).toContainEqual([
      '--context=standin',
      '--namespace=shop',
      'get',
      'deployment/api',
      '-o',
      'json',
    ]);
  });

  it('--set wins over the Deployment: 2 replicas of its 20 + 10 only eat into the buffer (a warning)', async () => {
    kubectl.setScenario({ deployment: { replicas: 6 } });
    const result = await prevent('--set', 'replicas=2', '--output', 'json');
    const report = JSON.parse(result.stdout) as Report;
    // (2 + 1) × 30 = 90 > 87: the buffer is short, a warning, not the critical oversubscription.
    expect(report.capacity).toMatchObject({
      replicas: 2,
      demand: 90,
      sources: { replicas: 'set', pool_size: 'kubectl' },
    });
    expect(ids(report)).toContain('capacity-no-buffer');
    expect(ids(report)).not.toContain('capacity-oversubscribed');
  });

  it('a pool setting from a ConfigMap is unknown, said with why: no verdict', async () => {
    kubectl.setScenario({ deployment: { replicas: 6, poolSize: 'valueFrom' } });
    const report = JSON.parse((await prevent('--output', 'json')).stdout) as Report;
    const finding = report.findings.find((f) => f.id === 'capacity-unknown')!;
    expect(finding.message).toContain(
      'pool_size: DATABASE_POOL_SIZE comes from valueFrom (a ConfigMap or Secret) in container api',
    );
  });
});
