import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPoolApp, type PoolApp, type TrafficStats } from '../helpers/pool-app.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-server.js';

// The test application against real servers and a real Prometheus: three replicas with real pools
// (pool 4 + overflow 2 = 6 each, a 1 s pool timeout), steady traffic, and api-2 switched to the
// leaky build at run time. It must look like RUNBOOK-006's incident from every side: api-2's pool
// full in Prometheus, its requests timing out while the others' succeed, its leaked sessions held
// on the server (idle, the same last query, growing ages); killing those sessions on the server
// must not give node-postgres's pool its slots back (SQLAlchemy's behaviour; mysql2's pool differs
// and is held to what it does); and a restart with the fixed build must bring it back.

const POOL_SIZE = 4;
const MAX_OVERFLOW = 2;
const MAX = POOL_SIZE + MAX_OVERFLOW;
const DEADLINE_MS = 30_000;

/** One leaked session as the server shows it. */
interface ServerSession {
  port: number;
  app: string;
  idle: boolean;
  query: string | null;
  idleSeconds: number;
}

interface Rig {
  url: string;
  /** The server's sessions from 127.0.0.1 (all of the app's), keyed by client port. */
  sessions(): Promise<ServerSession[]>;
  /** Ends the sessions of these client ports on the server, as the on-call engineer would. */
  kill(ports: number[]): Promise<void>;
  stop(): Promise<void>;
}

async function postgresRig(): Promise<Rig> {
  const pg: PgServer = await startPostgres({ maxConnections: 40 });
  return {
    url: pg.appUrl,
    async sessions() {
      const out = await pg.psql(
        `SELECT client_port, application_name, state, query,
                floor(extract(epoch FROM now() - state_change))::int
           FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND client_addr IS NOT NULL
            AND pid <> pg_backend_pid()`,
      );
      return rows(out, '|').map(([port, app, state, query, idle]) => ({
        port: Number(port),
        app: app!,
        idle: state === 'idle',
        query: query ?? null,
        idleSeconds: Number(idle),
      }));
    },
    async kill(ports) {
      await pg.psql(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE client_port IN (${ports.map(Number).join(', ')})`,
      );
    },
    stop: () => pg.stop(),
  };
}

async function mariadbRig(): Promise<Rig> {
  const db: MariaDBServer = await startMariaDB({ maxConnections: 40 });
  return {
    url: db.appUrl,
    // MariaDB's processlist keeps no last query for a sleeping connection, and with
    // performance_schema off (as shipped) no program name either: the port and idle time it has.
    async sessions() {
      const out = await db.sql(
        `SELECT SUBSTRING_INDEX(HOST, ':', -1), COMMAND, TIME
           FROM information_schema.PROCESSLIST WHERE HOST LIKE '127.0.0.1:%'`,
      );
      return rows(out, '\t').map(([port, command, time]) => ({
        port: Number(port),
        app: 'api',
        idle: command === 'Sleep',
        query: null,
        idleSeconds: Number(time),
      }));
    },
    async kill(ports) {
      const hosts = ports.map((p) => `'127.0.0.1:${Number(p)}'`).join(', ');
      const ids = rows(
        await db.sql(`SELECT ID FROM information_schema.PROCESSLIST WHERE HOST IN (${hosts})`),
        '\t',
      ).map(([id]) => Number(id));
      await db.sql(ids.map((id) => `KILL ${id};`).join('\n'));
    },
    stop: () => db.stop(),
  };
}

function rows(out: string, separator: string): string[][] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(separator));
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${DEADLINE_MS} ms; last: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const diff = (now: TrafficStats, before: TrafficStats): TrafficStats => ({
  sent: now.sent - before.sent,
  ok: now.ok - before.ok,
  timedOut: now.timedOut - before.timedOut,
  failed: now.failed - before.failed,
});

describe.each([
  { engine: 'postgres' as const, startRig: postgresRig },
  { engine: 'mysql' as const, startRig: mariadbRig },
])('the test application on $engine', ({ engine, startRig }) => {
  let rig: Rig;
  let app: PoolApp;
  let prom: PrometheusServer;

  const value = async (query: string): Promise<number | undefined> => {
    const answer = await prom.query(query);
    const sample = answer.data?.result[0];
    return sample ? Number(sample.value[1]) : undefined;
  };

  beforeAll(async () => {
    rig = await startRig();
    app = await startPoolApp({
      engine,
      url: rig.url,
      replicas: 3,
      poolSize: POOL_SIZE,
      maxOverflow: MAX_OVERFLOW,
      poolTimeoutMs: 1000,
    });
    prom = await startPrometheus({ scrape: app.scrapeJobs() });
    app.startTraffic(10);
  });

  afterAll(async () => {
    await app?.stop();
    await prom?.stop();
    await rig?.stop();
  });

  it('exports the seed metrics per replica, with application_name api on the server', async () => {
    expect(app.replicas().map((r) => r.name)).toEqual(['api-1', 'api-2', 'api-3']);
    const max = await prom.waitForResult('db_pool_connections_max', {
      until: (result) => result.length === 3,
    });
    expect(max.map((s) => [s.metric.pod, s.value[1]]).sort()).toEqual([
      ['api-1', String(MAX)],
      ['api-2', String(MAX)],
      ['api-3', String(MAX)],
    ]);
    for (const metric of ['db_pool_connections_active', 'db_pool_connections_idle']) {
      await prom.waitForResult(metric, { until: (result) => result.length === 3 });
    }
    // Every replica's requests go through: the wait histogram counts their checkouts.
    await prom.waitForResult('db_pool_wait_time_seconds_count', {
      until: (result) => result.length === 3 && result.every((s) => Number(s.value[1]) > 0),
    });
    const before = app.stats('api-1');
    await until(
      'api-1 requests succeed',
      async () => app.stats('api-1'),
      (s) => s.ok > before.ok,
    );
    if (engine === 'postgres') {
      const sessions = await rig.sessions();
      expect(sessions.length).toBeGreaterThan(0);
      expect(new Set(sessions.map((s) => s.app))).toEqual(new Set(['api']));
    }
  });

  it('api-2 leaking: its pool full in Prometheus, its requests time out, the others succeed, the server holds its sessions; killing them frees no slot in pg.Pool (mysql2 drops them); a restart with the fixed build recovers it', async () => {
    await app.setLeak('api-2', true);

    // Prometheus: api-2's active reaches its max; the others stay below theirs.
    await prom.waitForResult('db_pool_connections_active{pod="api-2"} == db_pool_connections_max', {
      timeoutMs: DEADLINE_MS,
    });
    expect(await value('db_pool_connections_active{pod="api-2"}')).toBe(MAX);
    for (const pod of ['api-1', 'api-3']) {
      expect(await value(`db_pool_connections_active{pod="${pod}"}`)).toBeLessThan(MAX);
    }

    // Traffic: from now on api-2 only times out, the others only succeed. Prometheus may count a
    // connection still being opened (pg.Pool counts it, as SQLAlchemy does), so wait until the
    // replica holds all its leaked connections, and let the requests already sent land.
    await until(
      'api-2 holds its max',
      () => app.state('api-2'),
      (s) => s.leaked === MAX,
    );
    await app.stopTraffic();
    app.startTraffic(10);
    const before = new Map(['api-1', 'api-2', 'api-3'].map((n) => [n, app.stats(n)]));
    const since = (name: string): TrafficStats => diff(app.stats(name), before.get(name)!);
    await until(
      'api-2 times out while the others succeed',
      async () => ['api-1', 'api-2', 'api-3'].map(since),
      ([one, two, three]) => two!.timedOut >= 5 && one!.ok >= 5 && three!.ok >= 5,
    );
    await app.stopTraffic();
    const [one, two, three] = ['api-1', 'api-2', 'api-3'].map(since);
    expect(two).toMatchObject({ ok: 0, failed: 0 });
    expect(one).toMatchObject({ timedOut: 0, failed: 0 });
    expect(three).toMatchObject({ timedOut: 0, failed: 0 });
    expect(await app.request('api-2')).toBe('timeout');
    expect(await app.request('api-1')).toBe('ok');

    // The wait histogram: api-2's checkouts waited the whole pool timeout.
    await prom.waitForResult(
      'db_pool_wait_time_seconds_count{pod="api-2"} - ignoring(le) db_pool_wait_time_seconds_bucket{pod="api-2",le="0.25"} > 0',
    );

    // The server: api-2's leaked connections are there, idle, with the same last query and ages
    // that grow.
    const state = await app.state('api-2');
    expect(state).toMatchObject({ leak: true, active: MAX, leaked: MAX });
    expect(state.heldLocalPorts).toHaveLength(MAX);
    const held = new Set(state.heldLocalPorts);
    const leakedSessions = async (): Promise<ServerSession[]> =>
      (await rig.sessions()).filter((s) => held.has(s.port));
    const first = await leakedSessions();
    expect(first).toHaveLength(MAX);
    expect(first.every((s) => s.idle && s.app === 'api')).toBe(true);
    if (engine === 'postgres') {
      expect(new Set(first.map((s) => s.query))).toEqual(
        new Set(['SELECT id, status FROM orders WHERE id = 1']),
      );
    }
    const youngest = Math.min(...first.map((s) => s.idleSeconds));
    await until(
      'the leaked sessions age',
      leakedSessions,
      (now) => now.length === MAX && Math.min(...now.map((s) => s.idleSeconds)) >= youngest + 2,
    );

    // The on-call engineer kills api-2's sessions on the server. node-postgres's pool, like
    // SQLAlchemy's, keeps counting them as checked out: the replica keeps failing. mysql2's pool
    // drops a connection whose session ended: there the slots come back.
    await rig.kill(state.heldLocalPorts);
    await until('the server ends the leaked sessions', leakedSessions, (s) => s.length === 0);
    // mysql2 serves the requests that gave up waiting (its pool cannot drop a waiter) once slots
    // free up, and they return their connections at once: wait for them to settle.
    const stillCounted = engine === 'postgres' ? MAX : 0;
    const afterKill = await until(
      'api-2 sees its sessions end',
      () => app.state('api-2'),
      (s) => s.lost === MAX && (engine === 'postgres' || s.active === 0),
    );
    const seenAt = Date.now() / 1000;
    const active = 'db_pool_connections_active{pod="api-2"}';
    const scraped = await prom.waitForResult(`${active} and timestamp(${active}) > ${seenAt}`);
    expect(afterKill.active).toBe(stillCounted);
    expect(Number(scraped[0]!.value[1])).toBe(stillCounted);
    expect(await app.request('api-2')).toBe(engine === 'postgres' ? 'timeout' : 'ok');

    // The fixed build: the server lets the old sessions go, the pool empties, requests succeed.
    const oldPort = app.replicas().find((r) => r.name === 'api-2')!.port;
    await app.restart('api-2', { leak: false });
    expect(app.replicas().find((r) => r.name === 'api-2')).toMatchObject({
      port: oldPort,
      leak: false,
    });
    // Its first request opens its first connection: on a loaded machine that may outlast the pool
    // timeout once, as in any cold start.
    await until(
      'api-2 serves again',
      () => app.request('api-2'),
      (outcome) => outcome === 'ok',
    );
    await until('the server drops the leaked sessions', leakedSessions, (s) => s.length === 0);
    app.startTraffic(10);
    const restarted = app.stats('api-2');
    await until(
      'api-2 succeeds again',
      async () => diff(app.stats('api-2'), restarted),
      (s) => s.ok >= 5,
    );
    expect(diff(app.stats('api-2'), restarted)).toMatchObject({ timedOut: 0, failed: 0 });
    await prom.waitForResult('db_pool_connections_active{pod="api-2"} < 2');
    expect(await app.state('api-2')).toMatchObject({ leak: false, leaked: 0 });
  });
  it('scale starts fresh replicas and stops the last ones; restart with the leaky build leaks again', async () => {
    await app.stopTraffic();
    await app.scale(4);
    expect(app.replicas().map((r) => r.name)).toEqual(['api-1', 'api-2', 'api-3', 'api-4']);
    await until(
      'api-4 serves',
      () => app.request('api-4'),
      (outcome) => outcome === 'ok',
    );
    expect(await app.state('api-4')).toMatchObject({ leak: false, leaked: 0, max: MAX });

    await app.scale(2);
    expect(app.replicas().map((r) => r.name)).toEqual(['api-1', 'api-2']);
    await expect(app.state('api-3')).rejects.toThrow('no replica named api-3');

    await app.restart('api-1', { leak: true });
    await until(
      'api-1 serves',
      () => app.request('api-1'),
      (outcome) => outcome === 'ok',
    );
    expect(await app.state('api-1')).toMatchObject({ leak: true, leaked: 1 });
  });
});
