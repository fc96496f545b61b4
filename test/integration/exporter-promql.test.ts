/**
 * The exporter steps' PromQL on a real Prometheus, fed known postgres_exporter series from a static
 * endpoint (the shapes a PostgreSQL 16 exporter and a second server give, which this machine's
 * PostgreSQL 15 cannot): usable slots less reserved_connections, one row per server, the selector.
 * The database itself is unreachable (nothing listens): the exporter is all poolctl can read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import {
  startMetricsEndpoint,
  startPrometheus,
  type MetricsEndpoint,
  type PrometheusServer,
} from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  exhausted?: string;
  steps: { id: string; rows?: Record<string, unknown>[] }[];
  findings: { id: string; severity: string; message: string }[];
  metrics: Record<string, number>;
  error?: { kind: string };
}

let prometheus: PrometheusServer;
const endpoints: MetricsEndpoint[] = [];

/** postgres_exporter's series for one server; `reserved16` only from PostgreSQL 16 on. */
function exposition(o: { active: number; idle: number; max: number; reserved16?: number }) {
  return [
    `pg_up 1`,
    `pg_stat_activity_count{datname="app",server="db:5432",state="active"} ${o.active}`,
    `pg_stat_activity_count{datname="app",server="db:5432",state="idle"} ${o.idle}`,
    `pg_stat_activity_count{datname="postgres",server="db:5432",state="idle"} 0`,
    `pg_settings_max_connections{server="db:5432"} ${o.max}`,
    `pg_settings_superuser_reserved_connections{server="db:5432"} 3`,
    ...(o.reserved16 !== undefined
      ? [`pg_settings_reserved_connections{server="db:5432"} ${o.reserved16}`]
      : []),
  ].join('\n');
}

beforeAll(async () => {
  // PostgreSQL 16, 100 slots, 3 + 5 reserved: 92 usable, all taken.
  endpoints.push(
    await startMetricsEndpoint(exposition({ active: 60, idle: 32, max: 100, reserved16: 5 })),
  );
  // Another server the same Prometheus scrapes, with room.
  endpoints.push(await startMetricsEndpoint(exposition({ active: 5, idle: 5, max: 100 })));
  prometheus = await startPrometheus({
    scrape: [{ job: 'postgres', targets: endpoints.map((e) => e.target) }],
  });
  await prometheus.waitForResult('count(pg_up) == 2');
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  for (const e of endpoints) await e.close();
});

const diagnose = async (...rest: string[]) => {
  const down = `postgres://oncall:pw@127.0.0.1:${await freePort()}/app`;
  return runCli([
    'diagnose',
    '--pg',
    down,
    '--prometheus',
    prometheus.url,
    '--output',
    'json',
    ...rest,
  ]);
};

describe('the exporter steps on a real Prometheus, the database unreachable', () => {
  it('one row per server; usable slots less reserved_connections where the exporter has it', async () => {
    const r = await diagnose();
    const report = JSON.parse(r.stdout) as Report;
    const rows = report.steps.find((s) => s.id === 'server-exporter')!.rows!;
    const byServer = Object.fromEntries(rows.map((row) => [row.server, row]));
    expect(byServer[endpoints[0]!.target]).toMatchObject({
      connections: 92,
      usable_connections: 92,
      utilization_percent: 100,
      up: 1,
    });
    // PostgreSQL 15 and older: no reserved_connections series, counted as 0.
    expect(byServer[endpoints[1]!.target]).toMatchObject({
      connections: 10,
      usable_connections: 97,
      utilization_percent: 10.31,
    });
    // The full one of the two is named; connection refused is no excuse for "healthy".
    expect(r.code).toBe(4);
    expect(report.exhausted).toBe('server');
    const full = report.findings.find((f) => f.id === 'exporter-server-critical')!;
    expect(full.message).toContain(`The server ${endpoints[0]!.target} is at 100%`);
    expect(r.stderr).toMatch(/connection refused/);
  }, 60_000);

  it('db_exporter_selector picks the server: the one with room, unreachable, is exit 3, not healthy', async () => {
    const r = await diagnose('--set', `db_exporter_selector=instance="${endpoints[1]!.target}"`);
    expect(r.code).toBe(3);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.status).toBe('unknown');
    expect(report.error?.kind).toBe('target');
    expect(report.metrics.exporter_utilization_percent).toBe(10.31);
    const rows = report.steps.find((s) => s.id === 'server-exporter')!.rows!;
    expect(rows.map((row) => row.server)).toEqual([endpoints[1]!.target]);
  }, 60_000);
});
