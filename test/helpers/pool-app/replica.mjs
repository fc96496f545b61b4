// One replica of the test application (test/helpers/pool-app.ts starts several): a small HTTP
// service with a REAL connection pool — node-postgres's pg.Pool or mysql2's createPool — that
// exports RUNBOOK-006's pool metrics with prom-client, and that can leak for real.
//
// Configuration: one JSON object in POOL_APP_REPLICA (see ReplicaConfig in pool-app.ts).
// Endpoints:
//   GET  /work            check a connection out, run a short query, release it (unless leaking):
//                         200 {ok}, 503 {outcome:'timeout'} when the pool gave no connection in
//                         time, 500 {outcome:'error'} for anything else
//   GET  /metrics         prom-client's exposition: db_pool_connections_{active,idle,max} and the
//                         histogram db_pool_wait_time_seconds (time to check a connection out)
//   GET  /admin/state     {name, leak, active, idle, max, leaked, lost, heldLocalPorts}
//   POST /admin/leak?on=1 switch the leak on (on=0: off; connections already leaked stay leaked)
// Written as plain JavaScript so that this very node runs it without a build or a loader. It dies
// when its parent does: the parent holds its stdin, and the end of stdin ends the replica.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import { URL } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import client from 'prom-client';

const config = JSON.parse(process.env.POOL_APP_REPLICA ?? '{}');
const { name, port, engine, url, poolSize, maxOverflow, poolTimeoutMs, applicationName } = config;
let leak = Boolean(config.leak);
// pg.Pool and mysql2's pool have one limit and no overflow: SQLAlchemy's QueuePool opens at most
// pool_size + max_overflow connections, so that sum is their max (and db_pool_connections_max).
const max = poolSize + maxOverflow;
/** The short query every request runs; a leaked session shows it as its last query. */
const QUERY = 'SELECT id, status FROM orders WHERE id = 1';

/** Connections checked out and never returned (leak mode). */
const leaked = new Set();
/** Leaked connections whose session ended under them (the server killed it): seen by the client. */
let lost = 0;

const pool = engine === 'postgres' ? postgresPool() : mysqlPool();

function postgresPool() {
  const p = new pg.Pool({
    connectionString: url,
    max,
    // pg.Pool's own checkout timeout: "timeout exceeded when trying to connect".
    connectionTimeoutMillis: poolTimeoutMs,
    // Keep the idle connections, as SQLAlchemy keeps pool_size of them.
    idleTimeoutMillis: 0,
    application_name: applicationName,
  });
  // An idle pooled connection whose session the server ends: pg.Pool drops it; say so, don't die.
  p.on('error', (error) => log(`idle connection lost: ${error.message}`));
  return {
    async checkout() {
      const conn = await p.connect();
      return {
        query: () => conn.query(QUERY),
        release: () => conn.release(),
        // A checked-out (leaked) connection whose session the server ends emits 'error' on the
        // client itself; unhandled, that would crash the replica. pg.Pool keeps counting it as
        // checked out, as SQLAlchemy does: killing the session does not give the slot back.
        onLost: (seen) => {
          conn.on('error', (error) => log(`leaked connection lost: ${error.message}`));
          conn.once('end', seen);
        },
        localPort: () => conn.connection?.stream?.localPort ?? null,
      };
    },
    // The pool's own view, as SQLAlchemy's checkedout(): every client it opened minus the idle.
    active: () => p.totalCount - p.idleCount,
    idle: () => p.idleCount,
  };
}

function mysqlPool() {
  const p = mysql.createPool({
    uri: url,
    connectionLimit: max,
    maxIdle: max,
    idleTimeout: 3_600_000,
    waitForConnections: true,
    queueLimit: 0,
    // What performance_schema.session_connect_attrs shows as the program (when it is on).
    connectAttributes: { program_name: applicationName },
  });
  const core = p.pool;
  return {
    async checkout() {
      // mysql2's pool has no checkout timeout (it waits forever): the application gives up after
      // poolTimeoutMs, and a connection that arrives after that goes straight back to the pool.
      const pending = p.getConnection();
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new PoolTimeout()), poolTimeoutMs);
      });
      let conn;
      try {
        conn = await Promise.race([pending, timeout]);
      } catch (error) {
        if (error instanceof PoolTimeout)
          pending.then(
            (late) => late.release(),
            () => undefined,
          );
        throw error;
      } finally {
        clearTimeout(timer);
      }
      return {
        query: () => conn.query(QUERY),
        release: () => conn.release(),
        // Unlike pg.Pool and SQLAlchemy, mysql2's pool drops a connection whose session ended
        // (PoolConnection removes itself on 'end' / 'error'): a server-side kill frees the slot.
        onLost: (seen) => {
          conn.connection.on('error', (error) => log(`leaked connection lost: ${error.message}`));
          conn.connection.once('end', seen);
        },
        localPort: () => conn.connection?.stream?.localPort ?? null,
      };
    },
    // mysql2 exposes no counts; these two queues are its own bookkeeping.
    active: () => core._allConnections.length - core._freeConnections.length,
    idle: () => core._freeConnections.length,
  };
}

class PoolTimeout extends Error {
  constructor() {
    super(
      `pool timeout: no connection within ${poolTimeoutMs} ms (pool ${poolSize} + overflow ${maxOverflow})`,
    );
  }
}

function isPoolTimeout(error) {
  return (
    error instanceof PoolTimeout || /timeout exceeded when trying to connect/i.test(error.message)
  );
}

// The seed's metrics, read from the pool at scrape time. The replica's name is not a label here:
// in a cluster Prometheus adds `pod` from service discovery; the rig's scrape jobs add it.
const registry = new client.Registry();
new client.Gauge({
  name: 'db_pool_connections_active',
  help: 'Connections checked out of the pool, as the pool counts them (leaked ones included)',
  registers: [registry],
  collect() {
    this.set(pool.active());
  },
});
new client.Gauge({
  name: 'db_pool_connections_idle',
  help: 'Connections open in the pool and not checked out',
  registers: [registry],
  collect() {
    this.set(pool.idle());
  },
});
new client.Gauge({
  name: 'db_pool_connections_max',
  help: 'Most connections the pool opens: pool_size + max_overflow',
  registers: [registry],
  collect() {
    this.set(max);
  },
});
const waitTime = new client.Histogram({
  name: 'db_pool_wait_time_seconds',
  help: 'Time to check a connection out of the pool (until the timeout, when none came)',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

async function work() {
  const started = performance.now();
  let conn;
  try {
    conn = await pool.checkout();
  } finally {
    waitTime.observe((performance.now() - started) / 1000);
  }
  if (leak) {
    // The bug: the connection is used and never returned.
    let seen = false;
    conn.onLost(() => {
      if (!seen) lost++;
      seen = true;
    });
    leaked.add(conn);
    await conn.query();
    return;
  }
  try {
    await conn.query();
  } finally {
    conn.release();
  }
}

const server = http.createServer((req, res) => {
  const { pathname, searchParams } = new URL(req.url ?? '/', 'http://replica');
  const reply = (status, body, type = 'application/json') => {
    res.writeHead(status, { 'content-type': type });
    res.end(type === 'application/json' ? JSON.stringify(body) : body);
  };
  if (pathname === '/work') {
    work().then(
      () => reply(200, { outcome: 'ok' }),
      (error) =>
        isPoolTimeout(error)
          ? reply(503, { outcome: 'timeout', error: error.message })
          : reply(500, { outcome: 'error', error: error.message }),
    );
  } else if (pathname === '/metrics') {
    registry.metrics().then((text) => reply(200, text, registry.contentType));
  } else if (pathname === '/admin/state') {
    reply(200, {
      name,
      leak,
      active: pool.active(),
      idle: pool.idle(),
      max,
      leaked: leaked.size,
      lost,
      heldLocalPorts: [...leaked].map((c) => c.localPort()).filter((p) => p !== null),
    });
  } else if (pathname === '/admin/leak' && req.method === 'POST') {
    leak = searchParams.get('on') === '1';
    reply(200, { name, leak });
  } else {
    reply(404, { error: 'not found' });
  }
});

function log(line) {
  process.stderr.write(`[${name}] ${line}\n`);
}

// The parent holds stdin: when it goes (however it dies), so does the replica.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

server.on('error', (error) => {
  log(`cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(error.code === 'EADDRINUSE' ? 98 : 1);
});
server.listen({ host: '127.0.0.1', port }, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, name, port })}\n`);
});
