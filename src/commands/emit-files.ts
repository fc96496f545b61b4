/**
 * The files `poolctl prevent --emit` writes, from the target's numbers and the runbook's
 * parameters: Prometheus alert rules, a pgbouncer.ini, and application pool settings. Pure text
 * builders: no I/O, no secret (nothing here ever sees a password).
 */
import { formatDuration } from '../runbook/params.js';
import type { ParameterValues } from '../runbook/types.js';
import { SEED_STATEMENT_TIMEOUT_MS, type Capacity, type EmitFacts } from './emit-capacity.js';

export type EmitKind = 'alerts' | 'pgbouncer' | 'pool-config';
export const EMIT_KINDS: readonly EmitKind[] = ['alerts', 'pgbouncer', 'pool-config'];

const q = (s: string) => JSON.stringify(s);
const num = (values: ParameterValues, name: string, fallback: number) => {
  const v = values[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
};
const str = (values: ParameterValues, name: string, fallback: string) => {
  const v = values[name];
  return typeof v === 'string' && v !== '' ? v : fallback;
};

function where(facts: EmitFacts): string {
  const host = facts.host.includes(':') ? `[${facts.host}]` : facts.host;
  return `${facts.engine}://${facts.user}@${host}:${facts.port}/${facts.database}`;
}

interface Rule {
  alert: string;
  expr: string;
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  source: string;
}

/** Prometheus rules: the application's pools (the seed's alert) and the server's side (exporters). */
export function renderAlerts(facts: EmitFacts, values: ParameterValues): string {
  const sel = str(values, 'app_pool_selector', 'job=~".*"');
  const active = str(values, 'app_pool_active_metric', 'db_pool_connections_active');
  const max = str(values, 'app_pool_max_metric', 'db_pool_connections_max');
  const wait = str(values, 'app_pool_wait_metric', 'db_pool_wait_time_seconds');
  const replica = str(values, 'replica_label', 'pod');
  const window = formatDuration(num(values, 'wait_window', 300));
  const critical = num(values, 'utilization_critical', 95);
  const warning = num(values, 'utilization_warning', 90);
  const waitMax = num(values, 'wait_p95_max_ms', 100);
  const longAfter = num(values, 'long_query_after', 30);
  const idleTxAfter = num(values, 'idle_in_tx_after', 30);
  const utilization = `100 * ${active}{${sel}} / ${max}{${sel}}`;
  const rules: Rule[] = [
    {
      alert: 'DatabaseConnectionPoolCritical',
      expr: `${utilization} > ${critical}`,
      for: '2m',
      severity: 'critical',
      summary: `Pool of {{ $labels.${replica} }} at {{ $value | humanize }}% (> ${critical}%): requests wait or fail`,
      source: 'RUNBOOK-006 "Add Alerts" (P0, response time 2 minutes)',
    },
    {
      alert: 'DatabaseConnectionPoolWarning',
      expr: `${utilization} > ${warning} <= ${critical}`,
      for: '5m',
      severity: 'warning',
      summary: `Pool of {{ $labels.${replica} }} at {{ $value | humanize }}% (> ${warning}%)`,
      source: 'exhaustion-response.md "Connection Monitoring" (alert threshold 90%)',
    },
    {
      alert: 'DatabaseConnectionPoolWaitHigh',
      // Per replica: the seed's sum over every replica hides the one whose pool is stuck.
      expr: `1000 * histogram_quantile(0.95, sum by (le, ${replica}) (rate(${wait}_bucket{${sel}}[${window}]))) > ${waitMax}`,
      for: '5m',
      severity: 'warning',
      summary: `{{ $labels.${replica} }} waits {{ $value | humanize }} ms (p95) for a connection (> ${waitMax} ms)`,
      source:
        'RUNBOOK-006 "Monitoring" (connection wait time p95) and "Verify Resolution" (< 100 ms)',
    },
  ];
  const usable =
    facts.engine === 'postgres'
      ? `sum by (instance) (pg_settings_max_connections - pg_settings_superuser_reserved_connections${
          facts.reserved ? ' - pg_settings_reserved_connections' : ''
        })`
      : 'sum by (instance) (mysql_global_variables_max_connections)';
  const used =
    facts.engine === 'postgres'
      ? 'sum by (instance) (pg_stat_activity_count)'
      : 'sum by (instance) (mysql_global_status_threads_connected)';
  const server = `100 * ${used} / ${usable}`;
  const exporter = facts.engine === 'postgres' ? 'postgres_exporter' : 'mysqld_exporter';
  rules.push(
    {
      alert: 'DatabaseServerConnectionsCritical',
      expr: `${server} > ${critical}`,
      for: '2m',
      severity: 'critical',
      summary: `{{ $labels.instance }}: connections at {{ $value | humanize }}% of the usable slots (> ${critical}%)`,
      source: `exhaustion-response.md "Connection pool utilization"; ${exporter}`,
    },
    {
      alert: 'DatabaseServerConnectionsWarning',
      expr: `${server} > ${warning} <= ${critical}`,
      for: '5m',
      severity: 'warning',
      summary: `{{ $labels.instance }}: connections at {{ $value | humanize }}% of the usable slots (> ${warning}%)`,
      source: `exhaustion-response.md "Connection pool utilization"; ${exporter}`,
    },
  );
  if (facts.engine === 'postgres') {
    rules.push(
      {
        alert: 'DatabaseLongRunningQueries',
        // The seed's count(pg_stat_activity{state="active", duration_seconds>30}) is not PromQL;
        // postgres_exporter's oldest open transaction per state is what it measures.
        expr: `max by (instance, datname) (pg_stat_activity_max_tx_duration{state="active"}) > ${longAfter}`,
        for: '1m',
        severity: 'warning',
        summary: `{{ $labels.instance }}/{{ $labels.datname }}: an active transaction has run {{ $value | humanizeDuration }} (> ${formatDuration(longAfter)})`,
        source: 'RUNBOOK-006 "Monitoring" (long-running queries); long_query_after',
      },
      {
        alert: 'DatabaseIdleInTransaction',
        expr: `max by (instance, datname) (pg_stat_activity_max_tx_duration{state=~"idle in transaction.*"}) > ${idleTxAfter}`,
        for: '1m',
        severity: 'warning',
        summary: `{{ $labels.instance }}/{{ $labels.datname }}: a session has been idle in a transaction for {{ $value | humanizeDuration }} (> ${formatDuration(idleTxAfter)})`,
        source: 'RUNBOOK-006 Root Cause B (long-running transactions); idle_in_tx_after',
      },
    );
  } else {
    rules.push(
      {
        alert: 'DatabaseConnectionsRefused',
        expr: 'sum by (instance) (increase(mysql_global_status_connection_errors_total{error="max_connections"}[5m])) > 0',
        for: '0m',
        severity: 'critical',
        summary:
          '{{ $labels.instance }} refused {{ $value | humanize }} connections (max_connections reached) in 5m',
        source: 'exhaustion-response.md "MySQL Connection Exhaustion"; mysqld_exporter',
      },
      {
        alert: 'DatabaseLongRunningQueries',
        // mysqld_exporter's default collectors have no per-query age: the slow-query counter
        // counts statements longer than the server's long_query_time.
        expr: 'sum by (instance) (increase(mysql_global_status_slow_queries[5m])) > 0',
        for: '0m',
        severity: 'warning',
        summary: `{{ $labels.instance }}: {{ $value | humanize }} queries ran longer than long_query_time in 5m`,
        source: 'RUNBOOK-006 "Monitoring" (long-running queries); long_query_after',
      },
    );
  }
  const out = [
    `# Prometheus alert rules for ${where(facts)} (${facts.product} ${facts.version}),`,
    '# written by `poolctl prevent --emit alerts`. Check with `promtool check rules FILE`, then list the',
    "# file under rule_files in prometheus.yml. Thresholds are the runbook's parameters (--set):",
    `# utilization_critical ${critical}%, utilization_warning ${warning}%, wait_p95_max_ms ${waitMax},` +
      ` long_query_after ${formatDuration(longAfter)}${facts.engine === 'postgres' ? `, idle_in_tx_after ${formatDuration(idleTxAfter)}` : ''}.`,
    `# Application pool series: ${active} / ${max}{${sel}} (app_pool_selector), one alert per ${replica}.`,
    facts.engine === 'postgres'
      ? `# Server side: postgres_exporter; usable slots = max_connections ${facts.maxConnections} − superuser_reserved ${facts.superuserReserved}${facts.reserved ? ` − reserved ${facts.reserved}` : ''} = ${facts.usable} today.`
      : `# Server side: mysqld_exporter; max_connections ${facts.maxConnections} today. The long-query rule counts` +
        `\n# statements past long_query_time (${facts.longQueryTime ?? '?'}s on this server): SET GLOBAL long_query_time = ${longAfter} to match long_query_after.`,
    'groups:',
    '  - name: poolctl-connection-pool',
    '    rules:',
  ];
  for (const r of rules) {
    out.push(
      `      # ${r.source}`,
      `      - alert: ${r.alert}`,
      `        expr: ${q(r.expr)}`,
      `        for: ${r.for}`,
      '        labels:',
      `          severity: ${r.severity}`,
      '          runbook: RUNBOOK-006',
      '        annotations:',
      `          summary: ${q(r.summary)}`,
      `          description: ${q(`Run: poolctl diagnose (${where(facts)})`)}`,
    );
  }
  return `${out.join('\n')}\n`;
}

/** A PgBouncer name or value that needs no quoting in pgbouncer.ini. */
const plain = (s: string) => /^[A-Za-z0-9_.-]+$/.test(s);
const iniName = (s: string) => (plain(s) ? s : `"${s.replace(/"/g, '""')}"`);
const connValue = (s: string) => (plain(s) || s.startsWith('/') ? s : `'${s.replace(/'/g, "''")}'`);

/** A pgbouncer.ini in transaction mode for the target's database, sized from its slots. */
export function renderPgbouncer(facts: EmitFacts, values: ParameterValues, cap: Capacity): string {
  const budget = Math.max(1, cap.budget);
  // The seed: default_pool_size 30, reserve_pool_size 5, min_pool_size 10, max_client_conn 200.
  const reserve = Math.min(5, Math.floor(budget / 4));
  const poolSize = Math.max(1, Math.min(30, budget - reserve));
  const minPool = Math.min(10, Math.floor(poolSize / 3));
  const clients = cap.peakInstances * (cap.configured.poolSize + cap.configured.maxOverflow);
  const maxClient = Math.max(200, clients);
  const auth = facts.passwordEncryption === 'md5' ? 'md5' : 'scram-sha-256';
  const authFile = str(values, 'pgbouncer_auth_file', '/etc/pgbouncer/userlist.txt');
  const db = facts.database;
  const lines = [
    `;; pgbouncer.ini for ${where(facts)} (${facts.product} ${facts.version}),`,
    ';; written by `poolctl prevent --emit pgbouncer` (exhaustion-response.md "PgBouncer Configuration").',
    ';; The applications connect here instead of to the server; their pools may stay as they are.',
    ';;',
    ...cap.lines.slice(0, 2).map((l) => `;; ${l}`),
    `;; default_pool_size ${poolSize} + reserve_pool_size ${reserve} ≤ ${budget} (seed: 30 + 5), and max_db_connections ${budget}`,
    ';;   caps every pool of this database together: the server keeps its buffer whatever the clients do.',
    `;; max_client_conn ${maxClient} = max(seed 200, ${cap.peakInstances} instances at peak × (${cap.configured.poolSize} + ${cap.configured.maxOverflow}) = ${clients})`,
    ...cap.sourceLines.map((l) => `;; ${l}`),
    '',
    '[databases]',
    `${iniName(db)} = host=${connValue(facts.host)} port=${facts.port} dbname=${connValue(db)}`,
    '',
    '[pgbouncer]',
    `listen_addr = ${str(values, 'pgbouncer_listen_addr', '*')}`,
    `listen_port = ${num(values, 'pgbouncer_port', 6432)}`,
    `;; ${auth}: the server's password_encryption, so the userlist can hold the server's own secrets.`,
    `auth_type = ${auth}`,
    `;; poolctl never writes secrets. Make the userlist as a superuser, readable by pgbouncer only:`,
    `;;   psql -Atc "SELECT format('\\"%s\\" \\"%s\\"', rolname, rolpassword) FROM pg_authid WHERE rolname = '${facts.user.replace(/'/g, "''")}'" > ${authFile}`,
    `;;   chmod 600 ${authFile}`,
    `auth_file = ${authFile}`,
    ';; Transaction pooling: a server connection is held only for a transaction (session',
    ';; state such as SET, LISTEN or session advisory locks does not survive between them).',
    'pool_mode = transaction',
    `max_client_conn = ${maxClient}`,
    `default_pool_size = ${poolSize}`,
    `min_pool_size = ${minPool}`,
    `reserve_pool_size = ${reserve}`,
    'reserve_pool_timeout = 3',
    `max_db_connections = ${budget}`,
    ";; The seed's reset; in transaction mode PgBouncer runs it only with server_reset_query_always = 1.",
    'server_reset_query = DISCARD ALL',
    'server_check_delay = 30',
    ";; Clients wait at most this long for a server connection, as the seeds' pool_timeout (30 s).",
    'query_wait_timeout = 30',
    ';; JDBC and others send it at start-up; PgBouncer refuses unknown start-up parameters.',
    'ignore_startup_parameters = extra_float_digits',
  ];
  return `${lines.join('\n')}\n`;
}

/** SQLAlchemy, HikariCP and node-postgres (mysql2 for MySQL) settings sized by the formula. */
export function renderPoolConfig(facts: EmitFacts, values: ParameterValues, cap: Capacity): string {
  const pg = facts.engine === 'postgres';
  const mariadb = facts.product === 'MariaDB';
  const timeoutMs = SEED_STATEMENT_TIMEOUT_MS;
  // A connection recycled after the server closed it fails on its next use: stay under wait_timeout.
  const recycleS =
    !pg && facts.waitTimeout ? Math.min(3600, Math.max(60, facts.waitTimeout - 60)) : 3600;
  const app = str(values, 'deployment', 'api');
  const total = cap.perInstance;
  const minIdle = Math.max(1, Math.floor(total / 4));
  const host = facts.host.includes(':') ? `[${facts.host}]` : facts.host;
  const jdbc = pg
    ? `jdbc:postgresql://${host}:${facts.port}/${facts.database}`
    : `jdbc:${mariadb ? 'mariadb' : 'mysql'}://${host}:${facts.port}/${facts.database}`;
  const sessionSql = mariadb
    ? `SET SESSION max_statement_time = ${timeoutMs / 1000}`
    : `SET SESSION max_execution_time = ${timeoutMs}`;
  const arithmetic = [
    `Capacity for ${where(facts)} (${facts.product} ${facts.version}):`,
    'instances × (pool_size + max_overflow) ≤ usable connections − capacity_buffer',
    ...cap.lines,
    ...cap.sourceLines,
    `Each instance: pool_size ${cap.poolSize} + max_overflow ${cap.maxOverflow} = ${total} connections at most.`,
    `Statement timeout ${timeoutMs / 1000} s (RUNBOOK-006 "Fix Root Cause"); recycle ${recycleS} s; leaks logged after 60 s.`,
  ];
  const hash = (l: string) => `# ${l}`;
  const sqlalchemy = [
    '```python',
    ...arithmetic.map(hash),
    'import os',
    '',
    'from sqlalchemy import create_engine',
    '',
    'engine = create_engine(',
    '    os.environ["DATABASE_URL"],  # the password stays in the environment, never in code',
    `    pool_size=${cap.poolSize},  # base connections per instance`,
    `    max_overflow=${cap.maxOverflow},  # extra under load: ${cap.poolSize} + ${cap.maxOverflow} = ${total} ≤ floor(${cap.budget} / ${cap.peakInstances})`,
    '    pool_timeout=30.0,  # wait at most 30 s for a connection, then fail (Root Cause D)',
    `    pool_recycle=${recycleS},  # replace connections after ${recycleS} s`,
    '    pool_pre_ping=True,  # test a connection before handing it out',
    pg
      ? `    connect_args={"options": "-c statement_timeout=${timeoutMs} -c idle_in_transaction_session_timeout=${timeoutMs}", "application_name": "${app}"},`
      : `    connect_args={"init_command": "${sessionSql}"},`,
    ')',
    '',
    '# Leak detection: a connection checked out longer than 60 s is logged with who took it.',
    'import logging, time, traceback',
    'from sqlalchemy import event',
    '',
    '@event.listens_for(engine, "checkout")',
    'def _checkout(dbapi_conn, record, proxy):',
    '    record.info["taken"] = (time.monotonic(), traceback.format_stack(limit=8))',
    '',
    '@event.listens_for(engine, "checkin")',
    'def _checkin(dbapi_conn, record):',
    '    taken, stack = record.info.pop("taken", (time.monotonic(), []))',
    '    if time.monotonic() - taken > 60:',
    '        logging.warning("connection held %.0f s (leak suspect):\\n%s", time.monotonic() - taken, "".join(stack))',
    '```',
  ];
  const hikari = [
    '```yaml',
    ...arithmetic.map(hash),
    'spring:',
    '  datasource:',
    `    url: ${jdbc}  # the password comes from SPRING_DATASOURCE_PASSWORD, never this file`,
    '    hikari:',
    `      maximum-pool-size: ${total}  # HikariCP has no overflow: pool_size + max_overflow`,
    `      minimum-idle: ${minIdle}  # 25% of the maximum (seed)`,
    '      idle-timeout: 300000  # 5 minutes',
    `      max-lifetime: ${Math.min(1800, recycleS) * 1000}  # under the server's own idle limits`,
    '      connection-timeout: 30000  # 30 seconds',
    '      leak-detection-threshold: 60000  # 1 minute (seed)',
    '      validation-timeout: 5000  # 5 seconds',
    pg
      ? `      data-source-properties:\n        options: "-c statement_timeout=${timeoutMs} -c idle_in_transaction_session_timeout=${timeoutMs}"\n        ApplicationName: ${app}`
      : `      connection-init-sql: "${sessionSql}"`,
    '```',
  ];
  const node = pg
    ? [
        '```js',
        ...arithmetic.map((l) => `// ${l}`),
        "import pg from 'pg';",
        '',
        'export const pool = new pg.Pool({',
        '  connectionString: process.env.DATABASE_URL, // the password stays in the environment',
        `  max: ${total}, // node-postgres has no overflow: pool_size + max_overflow`,
        '  connectionTimeoutMillis: 30_000, // wait at most 30 s for a connection',
        '  idleTimeoutMillis: 300_000,',
        `  maxLifetimeSeconds: ${recycleS}, // recycle`,
        `  statement_timeout: ${timeoutMs},`,
        `  idle_in_transaction_session_timeout: ${timeoutMs},`,
        `  application_name: '${app}',`,
        '});',
        '',
        '// Leak detection: warn when a client is not released within 60 s, with where it was taken.',
        "pool.on('acquire', (client) => {",
        "  const taken = new Error('connection held over 60 s (leak suspect)');",
        '  client.leakTimer = setTimeout(() => console.warn(taken.stack), 60_000).unref();',
        '});',
        "pool.on('release', (err, client) => clearTimeout(client.leakTimer));",
        '```',
      ]
    : [
        '```js',
        ...arithmetic.map((l) => `// ${l}`),
        "import mysql from 'mysql2/promise';",
        '',
        'export const pool = mysql.createPool({',
        '  uri: process.env.DATABASE_URL, // the password stays in the environment',
        `  connectionLimit: ${total}, // pool_size + max_overflow`,
        `  maxIdle: ${cap.poolSize},`,
        '  idleTimeout: 300_000,',
        '  connectTimeout: 10_000,',
        '  enableKeepAlive: true,',
        '});',
        `pool.on('connection', (conn) => conn.query('${sessionSql}'));`,
        "pool.on('acquire', (conn) => {",
        "  const taken = new Error('connection held over 60 s (leak suspect)');",
        '  conn.leakTimer = setTimeout(() => console.warn(taken.stack), 60_000).unref();',
        '});',
        "pool.on('release', (conn) => clearTimeout(conn.leakTimer));",
        '```',
      ];
  const warning = cap.impossible
    ? ['', `**Does not fit:** ${cap.lines[cap.lines.length - 1]}.`]
    : !cap.fits
      ? [
          '',
          `**Oversubscribed as configured:** ${cap.peakInstances} × (${cap.configured.poolSize} + ${cap.configured.maxOverflow}) > ${cap.budget}; the sizes below are scaled down to fit.`,
        ]
      : [];
  return [
    `# Pool settings for ${where(facts)}`,
    '',
    'Written by `poolctl prevent --emit pool-config`: RUNBOOK-006 "Fix Root Cause" and exhaustion-response.md',
    '"Connection Pool Optimization", sized by the capacity formula. Change the inputs with',
    '`--set replicas=N --set pool_size=N --set max_overflow=N --set rollout_surge=25 --set capacity_buffer=10`.',
    ...warning,
    '',
    '## SQLAlchemy (Python)',
    '',
    ...sqlalchemy,
    '',
    '## HikariCP (Spring Boot)',
    '',
    ...hikari,
    '',
    pg ? '## node-postgres' : '## mysql2 (Node.js)',
    '',
    ...node,
    '',
  ].join('\n');
}
