import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import type { ScrapeJob } from './prometheus-server.js';

/**
 * The test application of RUNBOOK-006: an HTTP service in several replicas (`api-1`, `api-2`, …),
 * each its own child process with a REAL connection pool (node-postgres's pg.Pool, or mysql2's
 * pool) exporting the seed's metrics with prom-client, that can leak connections for real.
 *
 * What the server sees: every replica connects as the same account with application_name /
 * program_name `api`, as the replicas of one Deployment do. The server cannot tell replicas apart
 * by name — by design; in a cluster each pod has its own client address, here they all come from
 * 127.0.0.1, so the rig hands out each replica's held client ports (`state().heldLocalPorts`).
 * The pool metrics do tell them apart: Prometheus labels each replica's series `pod="api-N"`
 * (through `scrapeJobs()`, as Kubernetes service discovery would).
 */
export interface PoolApp {
  engine: Engine;
  /** The replicas now running, by name. */
  replicas(): ReplicaInfo[];
  /** One scrape job (`api`) with a static group per replica, labelled `pod`; for startPrometheus. */
  scrapeJobs(): ScrapeJob[];
  /** One request to a replica: check out, query, release (or keep, when leaking). */
  request(name: string): Promise<RequestOutcome>;
  /** Sends `perSecond` requests a second to every replica (restarted ones too) until stopTraffic. */
  startTraffic(perSecond: number): void;
  stopTraffic(): Promise<void>;
  /** Counts of the traffic's outcomes per replica since the app started (never reset). */
  stats(name: string): TrafficStats;
  /** The replica's own view: leak mode, its pool's counts, the client ports it leaked. */
  state(name: string): Promise<ReplicaState>;
  /** Switches a running replica's leak on or off (connections already leaked stay leaked). */
  setLeak(name: string, leak: boolean): Promise<void>;
  /**
   * Kills the replica and starts it again with the same name and port: `leak: true` is the leaky
   * build, `leak: false` the fixed one (a rollback). The new process starts with an empty pool.
   */
  restart(name: string, opts: { leak: boolean }): Promise<void>;
  /**
   * Starts or stops replicas until `n` run (new ones named after the last, without the leak;
   * the highest-numbered stop first). Prometheus only scrapes what `scrapeJobs()` gave it at start.
   */
  scale(n: number): Promise<void>;
  /** Stops traffic and every replica; safe to call twice. */
  stop(): Promise<void>;
}

export type Engine = 'postgres' | 'mysql';

export interface StartPoolAppOptions {
  engine: Engine;
  /** The database URL every replica connects with (e.g. PgServer.appUrl, MariaDBServer.appUrl). */
  url: string;
  /** Default 3. */
  replicas?: number;
  /** The seed's SQLAlchemy settings: pool_size 20, max_overflow 10 → 30 connections per replica. */
  poolSize?: number;
  maxOverflow?: number;
  /** How long a request waits for a connection (SQLAlchemy's pool_timeout, default 30 s). */
  poolTimeoutMs?: number;
  /** Names of the replicas that start with the leak (the leaky build), e.g. ['api-2']. */
  leaking?: string[];
  /** application_name / program_name of every replica; default `api`. */
  applicationName?: string;
}

export interface ReplicaInfo {
  name: string;
  port: number;
  /** host:port of its /metrics. */
  target: string;
  leak: boolean;
}

export type RequestOutcome = 'ok' | 'timeout' | 'error';

export interface TrafficStats {
  sent: number;
  ok: number;
  /** The pool gave no connection within the pool timeout. */
  timedOut: number;
  /** Anything else: a failed query, a refused HTTP connection while the replica restarts. */
  failed: number;
}

export interface ReplicaState {
  name: string;
  leak: boolean;
  /** Checked out as the pool counts them: pg.Pool keeps a killed one, mysql2 drops it. */
  active: number;
  idle: number;
  max: number;
  /** Connections checked out and never returned. */
  leaked: number;
  /** Leaked connections whose session ended under them (killed on the server). */
  lost: number;
  /** The local (client) ports of the leaked connections: their rows on the server. */
  heldLocalPorts: number[];
}

interface ReplicaConfig {
  name: string;
  port: number;
  engine: Engine;
  url: string;
  poolSize: number;
  maxOverflow: number;
  poolTimeoutMs: number;
  applicationName: string;
  leak: boolean;
}

interface Replica {
  config: ReplicaConfig;
  child: ChildProcess;
  exited: Promise<void>;
  /** Set when the rig kills it (restart, scale, stop), so that its end is not reported. */
  killed: boolean;
}

const PROGRAM = fileURLToPath(new URL('./pool-app/replica.mjs', import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 10_000;
const live = new Set<ChildProcess>();
let exitHandlerInstalled = false;

/**
 * Starts the replicas and waits until each listens. Call `stop()` in `afterAll`; if this throws,
 * it has already stopped what it started. Replicas die with the test process however it ends:
 * each exits when its stdin (held by this process) closes, and the exit handler kills them.
 */
export async function startPoolApp(opts: StartPoolAppOptions): Promise<PoolApp> {
  installExitHandler();
  const base = {
    engine: opts.engine,
    url: opts.url,
    poolSize: opts.poolSize ?? 20,
    maxOverflow: opts.maxOverflow ?? 10,
    poolTimeoutMs: opts.poolTimeoutMs ?? 30_000,
    applicationName: opts.applicationName ?? 'api',
  };
  const replicas = new Map<string, Replica>();
  const stats = new Map<string, TrafficStats>();
  const inFlight = new Set<Promise<unknown>>();
  let traffic: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;

  const get = (name: string): Replica => {
    const replica = replicas.get(name);
    if (!replica) throw new Error(`pool-app: no replica named ${name}`);
    return replica;
  };
  const add = async (name: string, leak: boolean): Promise<void> => {
    const replica = await startReplica({ ...base, name, leak, port: 0 });
    replicas.set(name, replica);
    if (!stats.has(name)) stats.set(name, { sent: 0, ok: 0, timedOut: 0, failed: 0 });
  };
  const request = async (name: string): Promise<RequestOutcome> => {
    const { status } = await call(get(name).config.port, 'GET', '/work').catch(() => ({
      status: 0,
    }));
    return status === 200 ? 'ok' : status === 503 ? 'timeout' : 'error';
  };

  const app: PoolApp = {
    engine: opts.engine,
    replicas: () =>
      [...replicas.values()].map(({ config }) => ({
        name: config.name,
        port: config.port,
        target: `127.0.0.1:${config.port}`,
        leak: config.leak,
      })),
    scrapeJobs: () =>
      app.replicas().map((r) => ({ job: 'api', targets: [r.target], labels: { pod: r.name } })),
    request,
    startTraffic(perSecond) {
      if (traffic) clearInterval(traffic);
      traffic = setInterval(() => {
        for (const name of replicas.keys()) {
          const counts = stats.get(name)!;
          counts.sent++;
          const sent = request(name).then((outcome) => {
            if (outcome === 'ok') counts.ok++;
            else if (outcome === 'timeout') counts.timedOut++;
            else counts.failed++;
          });
          inFlight.add(sent);
          void sent.finally(() => inFlight.delete(sent));
        }
      }, 1000 / perSecond);
    },
    async stopTraffic() {
      if (traffic) clearInterval(traffic);
      traffic = undefined;
      await Promise.all(inFlight);
    },
    stats: (name) => ({ ...(stats.get(name) ?? { sent: 0, ok: 0, timedOut: 0, failed: 0 }) }),
    async state(name) {
      const { status, body } = await call(get(name).config.port, 'GET', '/admin/state');
      if (status !== 200) throw new Error(`pool-app: ${name} /admin/state answered ${status}`);
      return JSON.parse(body) as ReplicaState;
    },
    async setLeak(name, leak) {
      const replica = get(name);
      const { status } = await call(replica.config.port, 'POST', `/admin/leak?on=${leak ? 1 : 0}`);
      if (status !== 200) throw new Error(`pool-app: ${name} /admin/leak answered ${status}`);
      replica.config.leak = leak;
    },
    async restart(name, { leak }) {
      const old = get(name);
      await kill(old);
      replicas.set(name, await startReplica({ ...old.config, leak }));
    },
    async scale(n) {
      const names = [...replicas.keys()];
      for (const name of names.slice(n).reverse()) {
        await kill(get(name));
        replicas.delete(name);
      }
      for (let i = names.length + 1; i <= n; i++) await add(`api-${i}`, false);
    },
    stop() {
      stopping ??= (async () => {
        await app.stopTraffic();
        await Promise.all([...replicas.values()].map(kill));
        replicas.clear();
      })();
      return stopping;
    },
  };

  try {
    const leaking = new Set(opts.leaking ?? []);
    const names = Array.from({ length: opts.replicas ?? 3 }, (_, i) => `api-${i + 1}`);
    for (const name of names) await add(name, leaking.has(name));
    return app;
  } catch (error) {
    await app.stop();
    throw error;
  }
}

/** Spawns the replica program on `config.port` (0: a free port, retried when the bind is lost). */
async function startReplica(config: ReplicaConfig): Promise<Replica> {
  for (let attempt = 1; ; attempt++) {
    const port = config.port || (await freePort());
    const withPort = { ...config, port };
    const child = spawn(process.execPath, [PROGRAM], {
      env: { ...process.env, POOL_APP_REPLICA: JSON.stringify(withPort) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        live.delete(child);
        resolve();
      }),
    );
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      // Keep the tail only: a leaking replica logs every lost connection.
      stderr = (stderr + chunk).slice(-4000);
    });
    const outcome = await readyOrExit(child, exited);
    if (outcome === 'ready') {
      const replica: Replica = { config: withPort, child, exited, killed: false };
      // A replica that dies unasked says why in the test's output: a crash is not a timeout.
      void exited.then(() => {
        if (!replica.killed) {
          const how = child.signalCode ?? `exit ${child.exitCode}`;
          process.stderr.write(`pool-app: replica ${config.name} died (${how}):\n${stderr}\n`);
        }
      });
      return replica;
    }
    child.kill('SIGKILL');
    await exited;
    const reason = `${outcome}${stderr ? `\n${stderr.trim()}` : ''}`;
    // Exit 98: the port was taken between freePort() and listen; only a port we chose may move.
    if (child.exitCode === 98 && !config.port && attempt < 3) continue;
    throw new Error(`pool-app: replica ${config.name} did not start: ${reason}`);
  }
}

function readyOrExit(child: ChildProcess, exited: Promise<void>): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const timer = setTimeout(
      () => resolve(`not ready within ${READY_TIMEOUT_MS} ms`),
      READY_TIMEOUT_MS,
    );
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('"ready":true')) {
        clearTimeout(timer);
        resolve('ready');
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve(`exited (${child.signalCode ?? `exit ${child.exitCode}`})`);
    });
  });
}

/** SIGKILL, as a pod that is killed: the kernel closes its sockets, the server sees them go. */
async function kill(replica: Replica): Promise<void> {
  replica.killed = true;
  if (replica.child.exitCode === null && replica.child.signalCode === null) {
    replica.child.kill('SIGKILL');
  }
  await replica.exited;
}

function call(
  port: number,
  method: 'GET' | 'POST',
  pathname: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method,
        timeout: REQUEST_TIMEOUT_MS,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** On an ordinary exit or a signal, kill every replica (their stdin closing covers the rest). */
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  const killAll = (): void => {
    for (const child of live) child.kill('SIGKILL');
    live.clear();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
