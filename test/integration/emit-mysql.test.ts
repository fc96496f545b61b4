import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLine, sleep } from '../helpers/expect.js';
import { freePort } from '../helpers/free-port.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

const run = promisify(execFile);
const EXPORTER = '/usr/bin/prometheus-mysqld-exporter';

// prevent --emit on a stock MariaDB: the rules use mysqld_exporter's real series (a real exporter
// scraped by a real Prometheus proves the names), the pool settings use MariaDB's statement limit.
describe('prevent --emit on MariaDB', () => {
  let server: MariaDBServer;
  let exporter: ChildProcess | undefined;
  let prometheus: PrometheusServer | undefined;
  let dir: string;

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 40 });
    await server.sql(
      "CREATE USER 'exporter'@'%' IDENTIFIED BY 'exporter-pw' WITH MAX_USER_CONNECTIONS 3; GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'%';",
    );
    dir = mkdtempSync(join(tmpdir(), 'poolctl-emit-my-'));
  });
  afterAll(async () => {
    exporter?.kill('SIGKILL');
    await prometheus?.stop();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const emit = (kind: string, ...rest: string[]) =>
    runCli(['prevent', '--mysql', server.appUrl, '--emit', kind, ...rest]);

  it('alerts: promtool passes them; over the real mysqld_exporter the server-side rule evaluates', async () => {
    const file = join(dir, 'alerts.yml');
    const result = await emit('alerts', '-o', file, '--set', 'utilization_warning=1');
    expect(result.code).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('max_connections 40 today');
    expect(text).toContain('mysql_global_status_threads_connected');
    expect(text).not.toContain('pg_');
    const check = await run('/usr/bin/promtool', ['check', 'rules', file]);
    expect(check.stdout).toContain('SUCCESS: 7 rules found');

    const port = await freePort();
    exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], {
      env: { DATA_SOURCE_NAME: `exporter:exporter-pw@tcp(127.0.0.1:${server.port})/` },
      stdio: 'ignore',
    });
    prometheus = await startPrometheus({
      ruleFiles: [file],
      scrape: [{ job: 'mysql', targets: [`127.0.0.1:${port}`] }],
    });
    type Alerts = { data: { alerts: { labels: Record<string, string> }[] } };
    let alerts: string[] = [];
    for (let i = 0; i < 80; i++) {
      const answer = (await prometheus.api('/api/v1/alerts')) as Alerts;
      alerts = answer.data.alerts.map((a) => `${a.labels.alertname} ${a.labels.instance}`);
      if (alerts.length > 0) break;
      await sleep(250);
    }
    expect(alerts).toContain(`DatabaseServerConnectionsWarning 127.0.0.1:${port}`);
    type Rules = { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const rules = ((await prometheus.api('/api/v1/rules')) as Rules).data.groups.flatMap(
      (g) => g.rules,
    );
    expect(rules.filter((r) => r.health !== 'ok')).toEqual([]);
  }, 60_000);

  it('pool-config uses max_statement_time, the mysql2 pool and the real max_connections', async () => {
    const result = await emit('pool-config');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('usable connections: max_connections 40');
    expect(result.stdout).toContain('SET SESSION max_statement_time = 30');
    expect(result.stdout).toContain("import mysql from 'mysql2/promise';");
    expect(result.stdout).toContain('jdbc:mariadb://127.0.0.1:');
    expect(result.stdout).not.toContain(decodeURIComponent(new URL(server.appUrl).password));
  });

  it('pgbouncer: refused for a MySQL target, exit 2 in one line', async () => {
    const result = await emit('pgbouncer');
    expectOneLine(result, 2, 'PgBouncer pools PostgreSQL only');
  });
});
