/**
 * The leak signature on both sides (issue 14, item 4): a replica of a real application (pg.Pool,
 * prom-client, scraped by a real Prometheus) that checks out connections one request at a time and
 * never returns them, against a real PostgreSQL with room. diagnose names the application on the
 * server and the replica in the pools, calls it critical, puts restart-app and rollback-app first,
 * and names the replica that stands out against the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPoolApp, type PoolApp } from '../helpers/pool-app.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  exhausted?: string;
  findings: { id: string; severity: string; message: string }[];
  suggested: { id: string }[];
}

let server: PgServer;
let app: PoolApp;
let prometheus: PrometheusServer;

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 40 });
  app = await startPoolApp({
    engine: 'postgres',
    url: server.appUrl,
    replicas: 3,
    poolSize: 3,
    maxOverflow: 1,
    poolTimeoutMs: 500,
    leaking: ['api-2'],
  });
  prometheus = await startPrometheus({ scrape: app.scrapeJobs() });
  // One request a second to the leaking replica: each leaks its connection at its own moment.
  for (let i = 0; i < 4; i++) {
    await app.request('api-2');
    await new Promise((r) => setTimeout(r, 1100));
  }
  await prometheus.waitForResult('db_pool_connections_active{pod="api-2"}', {
    until: (r) => r[0]?.value[1] === '4',
    timeoutMs: 30_000,
  });
}, 120_000);

afterAll(async () => {
  await app?.stop();
  await prometheus?.stop();
  await server?.stop();
});

describe('a replica leaking one connection per request', () => {
  it('diagnose: critical, the leak named on both sides, restart and rollback first, the replica standing out', async () => {
    const r = await runCli(
      ['diagnose', '--pg', server.superuserUrl, '--prometheus', prometheus.url].concat([
        '--set',
        'leak_idle_after=1s',
        '--output',
        'json',
      ]),
    );
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.exhausted).toBe('application');
    const confirmed = report.findings.find((f) => f.id === 'leak-confirmed');
    expect(confirmed?.severity).toBe('critical');
    expect(confirmed!.message).toMatch(
      /^Connection leak: replica api-2's pool is at its limit \(4 of 4; full: api-2\) while api \(app from 127\.0\.0\.1\) holds 4 sessions idle past 1s on the server, left at [3-5] different moments/,
    );
    const signature = report.findings.find((f) => f.id === 'leak-signature');
    expect(signature!.message).toContain('Last query: SELECT id, status FROM orders WHERE id = 1');
    expect(report.suggested.map((s) => s.id).slice(0, 2)).toEqual(['restart-app', 'rollback-app']);
    const outlier = report.findings.find((f) => f.id === 'app-pool-outlier');
    expect(outlier!.message).toMatch(
      /^Replica api-2 stands out: its pool is at 100% \(4 of 4\), ∞× the median of the other 2 replicas \(0%; next api-[13] at 0%\)/,
    );
  }, 60_000);
});
