import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';

/**
 * Steps whose target poolctl does not have (Prometheus, kubectl) are listed "to do by hand" with
 * their command rendered from the real values, shell-quoted, an unknown value left open, and the
 * flag that would let poolctl run them. A healthy, idle server is enough: these steps run always.
 */

/** The log step's patterns as one grep, shell-quoted: what the operator pastes. */
const LOGS_GREP = String.raw`'pool\b.*\b(exhausted|full|limit|timed? ?out)|exhausted.*\bpool|(could not|unable to|failed to|cannot|can'\''t) (get|acquire|obtain|check ?out) (a )?(db |database )?connection|QueuePool|\btime(d)?[ -]?out|leak|transaction|too many (connections|clients)|remaining connection slots'`;

describe('diagnose on PostgreSQL: the steps poolctl cannot run are rendered by hand', () => {
  let server: PgServer;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 20 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('lists the promql step with <PROMETHEUS_URL> and --prometheus, a hostile --set quoted', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--set',
      'label_selector=app=api; x',
      '--set',
      'deployment=$(touch /tmp/pwned)',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const byHand = result.stdout.slice(result.stdout.indexOf('To do by hand'));
    expect(byHand).toContain(
      [
        '  - Application pools, per replica',
        `    curl -sG '<PROMETHEUS_URL>/api/v1/query' --data-urlencode 'query=max by (pod) (100 * db_pool_connections_active{job=~".*"} / db_pool_connections_max{job=~".*"})'  # utilization_percent`,
      ].join('\n'),
    );
    expect(byHand).toContain('    (poolctl can run this itself, given --prometheus URL)');
    expect(byHand).toContain(
      `    kubectl logs -l 'app=api; x' --tail=500 --all-containers=true --prefix=true | grep -iE ${LOGS_GREP}`,
    );
    expect(byHand).toContain("    kubectl rollout history 'deployment/$(touch /tmp/pwned)'");
    expect(byHand).toContain("    git log --oneline '--since=1 day ago' -- src/infrastructure/db/");
  });

  it('--output json: each by-hand step with its command and flag', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--output',
      'json',
      '--set',
      'label_selector=app=api; x',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      manual: { step: string; command: string; flag?: string; status: string }[];
    };
    expect(report.manual).toContainEqual({
      step: 'app-logs-leaks',
      title: 'Application logs for leaks and open transactions',
      command: `kubectl logs -l 'app=api; x' --tail=500 --all-containers=true --prefix=true | grep -iE ${LOGS_GREP}`,
      flag: '--kubectl PATH / --kube-context NAME',
      status: 'pending',
    });
    expect(report.manual.find((m) => m.step === 'recent-db-code-changes')).not.toHaveProperty(
      'flag',
    );
  });

  it('a user runbook (--runbook FILE) that includes a shared part runs it, overrides applied', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--runbook',
      'test/fixtures/runbooks/include/main.yaml',
    ]);
    // Exit 4: the fixture has no metrics step, so its status is unknown; the steps ran.
    expect(result.code, result.stderr).toBe(4);
    expect(result.stdout).toContain('runbook postgres/main');
    // The part's kubectl step, with main.yaml's default for the part's parameter.
    expect(result.stdout).toContain(
      ['  - Rollouts', '    kubectl rollout history deployment/web'].join('\n'),
    );
  });
});
