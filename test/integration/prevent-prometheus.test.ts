/**
 * prevent's capacity formula from the application's side: a real Prometheus scraping the seed's
 * db_pool_connections_max for three replicas, against a real PostgreSQL's usable connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import {
  startMetricsEndpoint,
  startPrometheus,
  type MetricsEndpoint,
  type PrometheusServer,
} from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

let server: PgServer;
let prometheus: PrometheusServer;
let metrics: MetricsEndpoint;

/** Three replicas with pools of 30 (pool_size 20 + max_overflow 10, the seed's example). */
const pools = ['api-1', 'api-2', 'api-3']
  .flatMap((pod) => [
    `db_pool_connections_active{pod="${pod}"} 2`,
    `db_pool_connections_max{pod="${pod}"} 30`,
  ])
  .join('\n');

beforeAll(async () => {
  server = await startPostgres({ maxConnections: 100 });
  metrics = await startMetricsEndpoint(pools);
  prometheus = await startPrometheus({ scrape: [{ job: 'api', targets: [metrics.target] }] });
  await prometheus.waitForResult('db_pool_connections_max', { until: (r) => r.length === 3 });
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await metrics?.close();
  await server?.stop();
});

describe('prevent: the capacity formula from Prometheus', () => {
  const prevent = (...args: string[]) =>
    runCli(['prevent', '--pg', server.superuserUrl, '--prometheus', prometheus.url, ...args]);

  it("db_pool_connections_max per replica: 3 replicas + a rollout's 1 × 30 = 120 > 97 usable − 10 buffer", async () => {
    const result = await prevent('--output', 'json');
    const report = JSON.parse(result.stdout);
    expect(report.capacity).toMatchObject({
      replicas: 3,
      surge: 1,
      per_pod: 30,
      demand: 120,
      usable: 97,
      buffer: 10,
      oversubscribed: true,
      sources: {
        replicas: 'prometheus',
        per_pod: 'prometheus',
        surge: 'default',
        usable: 'server',
      },
    });
    const finding = report.findings.find((f: { id: string }) => f.id === 'capacity-oversubscribed');
    expect(finding).toMatchObject({ severity: 'critical' });
    expect(finding.message).toMatch(/^\(3 \+ 1\) × 30 = 120 > 97 usable − 10 buffer: /);
    expect(finding.message).toContain(
      'replicas 3 (Prometheus db_pool_connections_max per replica)',
    );
  });

  it('without the surge the buffer is what is short; a smaller buffer fits; --set wins over Prometheus', async () => {
    const noSurge = JSON.parse(
      (await prevent('--set', 'rollout_surge=0', '--output', 'json')).stdout,
    );
    // 3 × 30 = 90 ≤ 97 usable, but > 97 − 10.
    expect(noSurge.findings).toContainEqual(
      expect.objectContaining({ id: 'capacity-no-buffer', severity: 'warning' }),
    );
    const fits = JSON.parse(
      (await prevent('--set', 'rollout_surge=0', '--set', 'capacity_buffer=5', '--output', 'json'))
        .stdout,
    );
    expect(fits.findings).toContainEqual(expect.objectContaining({ id: 'capacity-ok' }));
    const given = JSON.parse(
      (
        await prevent(
          ...['--set', 'replicas=5', '--set', 'pool_size=20', '--set', 'max_overflow=10'],
          ...['--output', 'json'],
        )
      ).stdout,
    );
    // (5 + ceil(5 × 25%)) × (20 + 10) = 210 > 97.
    expect(given.capacity).toMatchObject({ replicas: 5, surge: 2, demand: 210 });
    expect(given.capacity.sources).toMatchObject({ replicas: 'set', pool_size: 'set' });
    expect(given.findings).toContainEqual(
      expect.objectContaining({ id: 'capacity-oversubscribed', severity: 'critical' }),
    );
  });
});
