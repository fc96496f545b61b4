import { startPoolApp, type PoolApp } from './pool-app.js';
import { startPostgres, type PgServer } from './postgres-server.js';
import {
  startMetricsEndpoint,
  startPrometheus,
  type MetricsEndpoint,
  type PrometheusServer,
} from './prometheus-server.js';

/**
 * The leak scenarios the integration tests share, each set up once here.
 *
 * `startLeakRig`: issue 14's application for real — a PostgreSQL with room (max_connections 40),
 * three replicas of the pool app (pool-app.ts, pg.Pool) of which api-2 leaks, and a Prometheus
 * scraping every replica. The test then makes api-2 leak (traffic, or requests one by one) and
 * waits with `waitUntilFull` until Prometheus sees its pool at the limit.
 *
 * `startRisingPool`: the application's side alone, when the test needs the exact shape of the
 * rise over time: a metrics endpoint whose api-1 climbs from 4 to its pool's 30 while api-2 stays
 * at 5, scraped by a real Prometheus; it returns once Prometheus has recorded the whole rise.
 */

/** The replica that leaks in `startLeakRig`. */
export const LEAKING_REPLICA = 'api-2';

export interface LeakRigOptions {
  /** Per replica; 3 × (poolSize + maxOverflow) stays well below the server's 40. */
  poolSize: number;
  maxOverflow: number;
  poolTimeoutMs: number;
}

export interface LeakRig {
  server: PgServer;
  app: PoolApp;
  prometheus: PrometheusServer;
  /** Resolves once Prometheus reads api-2's pool as full (poolSize + maxOverflow checked out). */
  waitUntilFull(timeoutMs: number): Promise<void>;
  /** Stops the application, Prometheus and the server; safe after a failed start. */
  stop(): Promise<void>;
}

export async function startLeakRig(opts: LeakRigOptions): Promise<LeakRig> {
  let app: PoolApp | undefined;
  let prometheus: PrometheusServer | undefined;
  const server = await startPostgres({ maxConnections: 40 });
  const stop = async () => {
    await app?.stop();
    await prometheus?.stop();
    await server.stop();
  };
  try {
    app = await startPoolApp({
      engine: 'postgres',
      url: server.appUrl,
      replicas: 3,
      ...opts,
      leaking: [LEAKING_REPLICA],
    });
    prometheus = await startPrometheus({ scrape: app.scrapeJobs() });
  } catch (err) {
    await stop();
    throw err;
  }
  const full = String(opts.poolSize + opts.maxOverflow);
  const scraped = prometheus;
  return {
    server,
    app,
    prometheus,
    async waitUntilFull(timeoutMs) {
      await scraped.waitForResult(`db_pool_connections_active{pod="${LEAKING_REPLICA}"}`, {
        until: (r) => r[0]?.value[1] === full,
        timeoutMs,
      });
    },
    stop,
  };
}

export interface RisingPoolOptions {
  /** Connections api-1 leaks every 600 ms. */
  perTick: number;
  /** How long api-1 stays flat at 4, scraped, before it starts to rise (ms; default 0). */
  flatMs?: number;
}

export interface RisingPool {
  prometheus: PrometheusServer;
  /** When api-1 began to rise (ms since the epoch). */
  riseStartedAt: number;
  /** Stops the rise, Prometheus and the endpoint. */
  stop(): Promise<void>;
}

export async function startRisingPool(opts: RisingPoolOptions): Promise<RisingPool> {
  let leaked = 4;
  const exposition = () =>
    [
      `db_pool_connections_active{pod="api-1"} ${leaked}`,
      'db_pool_connections_max{pod="api-1"} 30',
      'db_pool_connections_active{pod="api-2"} 5',
      'db_pool_connections_max{pod="api-2"} 30',
    ].join('\n');
  let ticker: NodeJS.Timeout | undefined;
  let prometheus: PrometheusServer | undefined;
  const pools: MetricsEndpoint = await startMetricsEndpoint(exposition());
  const stop = async () => {
    if (ticker) clearInterval(ticker);
    await prometheus?.stop();
    await pools.close();
  };
  try {
    prometheus = await startPrometheus({ scrape: [{ job: 'api', targets: [pools.target] }] });
    await prometheus.waitForResult('db_pool_connections_active', { until: (r) => r.length === 2 });
    // Flat first: a few scrapes at the level the rise starts from.
    if (opts.flatMs) await new Promise((resolve) => setTimeout(resolve, opts.flatMs));
    const riseStartedAt = Date.now();
    ticker = setInterval(() => {
      leaked = Math.min(30, leaked + opts.perTick);
      pools.set(exposition());
    }, 600);
    // The whole rise, 4 → 30, and a few scrapes of the full pool.
    await prometheus.waitForResult('max_over_time(db_pool_connections_active{pod="api-1"}[1m])', {
      until: (r) => Number(r[0]?.value[1]) >= 30,
      timeoutMs: 60_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    return { prometheus, riseStartedAt, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
