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

  it('sums db_pool_connections_max per replica: 3 × 30 = 90 of 97 usable lacks the buffer', async () => {
    const result = await prevent('--output', 'json');
    const report = JSON.parse(result.stdout);
    expect(report.capacity).toMatchObject({
      instances: 3,
      per_instance: 30,
      total: 90,
      usable_connections: 97,
      buffer: 18,
      from: 'Prometheus db_pool_connections_max per replica',
    });
    expect(report.findings).toContainEqual(
      expect.objectContaining({ id: 'capacity-no-buffer', severity: 'warning' }),
    );
  });

  it('a smaller buffer fits; --set numbers take precedence over Prometheus', async () => {
    const fits = JSON.parse(
      (await prevent('--set', 'capacity_headroom=5', '--output', 'json')).stdout,
    );
    expect(fits.findings).toContainEqual(expect.objectContaining({ id: 'capacity-ok' }));
    const given = JSON.parse(
      (await prevent('--set', 'replicas=5', '--set', 'pool_size=20', '--output', 'json')).stdout,
    );
    // 5 × (20 + the default max_overflow 10) = 150 > 97.
    expect(given.capacity).toMatchObject({ instances: 5, total: 150 });
    expect(given.findings).toContainEqual(
      expect.objectContaining({ id: 'capacity-oversubscribed', severity: 'critical' }),
    );
  });
});
