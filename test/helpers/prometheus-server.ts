import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';

/** A throwaway Prometheus (Debian's `prometheus` package) on 127.0.0.1. */
export interface PrometheusServer {
  host: string;
  port: number;
  /** http(s)://127.0.0.1:<port> — what `--prometheus` is given (no credentials in it). */
  url: string;
  dir: string;
  logFile: string;
  /** An instant query through the HTTP API: the raw JSON answer (`{status, data, …}`). */
  query(query: string): Promise<PromApiAnswer>;
  /**
   * Polls an instant query until its result is non-empty and `until` (if given) accepts it;
   * returns that result. Scrapes take a scrape interval to land: use this before asserting.
   */
  waitForResult(query: string, opts?: WaitOptions): Promise<PromApiSample[]>;
  /** GET an API path (e.g. `/api/v1/rules`, `/api/v1/alerts`): the parsed JSON answer. */
  api(pathname: string): Promise<unknown>;
  /** Kills the server (SIGKILL) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

export interface PromApiAnswer {
  status: 'success' | 'error';
  data?: { resultType: string; result: PromApiSample[] };
  errorType?: string;
  error?: string;
}
export interface PromApiSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface WaitOptions {
  timeoutMs?: number;
  until?: (result: PromApiSample[]) => boolean;
}

export interface ScrapeJob {
  job: string;
  /** host:port of each endpoint, e.g. a MetricsEndpoint's `target`. */
  targets: string[];
  /** Labels added to every series of the job (e.g. { pod: 'api-1' }). */
  labels?: Record<string, string>;
  metricsPath?: string;
}

export interface StartPrometheusOptions {
  scrape?: ScrapeJob[];
  /** Seconds between scrapes (and rule evaluations); default 1. */
  scrapeIntervalS?: number;
  /** Rule files to load (copied into the server's directory and listed under rule_files). */
  ruleFiles?: string[];
  /** Prometheus's own web configuration (--web.config.file): HTTPS and basic auth. */
  web?: {
    /** Serve HTTPS with this certificate and key (PEM); `caPem` signed it (the rig trusts it). */
    tls?: { cert: string; key: string; caPem: string };
    /** Require this user; Prometheus stores a bcrypt hash, the rig sends the password. */
    basicAuth?: { user: string; password: string; bcryptHash: string };
  };
}

interface Instance {
  dir: string;
  child?: ChildProcess;
  stopping?: Promise<void>;
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

const BINARY = '/usr/bin/prometheus';
const DIR_PREFIX = 'poolctl-prom-';
const live = new Set<Instance>();
let exitHandlerInstalled = false;

/**
 * Starts Prometheus in a temporary directory (its TSDB and config there), scraping `scrape` every
 * second, and waits until /-/ready answers. As root it runs as Debian's `prometheus` user. It
 * runs under `setpriv --pdeathsig KILL`, so it dies with the test process however that dies;
 * directories left behind are removed on the next start. Call `stop()` in `afterAll`; if this
 * function throws, it has already cleaned up.
 */
export async function startPrometheus(
  opts: StartPrometheusOptions = {},
): Promise<PrometheusServer> {
  if (!fs.existsSync(BINARY)) {
    throw new Error(
      `${BINARY} is missing: install Debian's prometheus package (scripts/lib/ensure-system.sh)`,
    );
  }
  const osUser = serverOsUser();
  await reapOrphans();
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  const instance: Instance = { dir };
  live.add(instance);
  installExitHandler();

  try {
    await writeFile(path.join(dir, 'owner.pid'), String(process.pid));
    const interval = `${opts.scrapeIntervalS ?? 1}s`;
    // JSON is YAML: no YAML library needed to write the config.
    const config = {
      global: {
        scrape_interval: interval,
        evaluation_interval: interval,
        scrape_timeout: interval,
      },
      scrape_configs: scrapeConfigs(opts.scrape ?? []),
      rule_files: [] as string[],
    };
    const ruleCopies: string[] = [];
    for (const [i, file] of (opts.ruleFiles ?? []).entries()) {
      const copy = path.join(dir, `rules-${i}.yml`);
      await writeFile(copy, await readFile(file));
      config.rule_files.push(copy);
      ruleCopies.push(copy);
    }
    const configFile = path.join(dir, 'prometheus.yml');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    await mkdir(path.join(dir, 'data'));
    const owned = [dir, configFile, path.join(dir, 'data'), ...ruleCopies];
    let webConfigFile: string | undefined;
    if (opts.web) {
      const web: Record<string, unknown> = {};
      if (opts.web.tls) {
        await writeFile(path.join(dir, 'server.crt'), opts.web.tls.cert);
        await writeFile(path.join(dir, 'server.key'), opts.web.tls.key, { mode: 0o600 });
        owned.push(path.join(dir, 'server.crt'), path.join(dir, 'server.key'));
        web.tls_server_config = {
          cert_file: path.join(dir, 'server.crt'),
          key_file: path.join(dir, 'server.key'),
        };
      }
      if (opts.web.basicAuth) {
        web.basic_auth_users = { [opts.web.basicAuth.user]: opts.web.basicAuth.bcryptHash };
      }
      webConfigFile = path.join(dir, 'web.yml');
      await writeFile(webConfigFile, JSON.stringify(web, null, 2));
      owned.push(webConfigFile);
    }
    if (osUser) {
      for (const p of owned) await chown(p, osUser.uid, osUser.gid);
    }
    const api = apiClient(opts.web);

    const logFile = path.join(dir, 'prometheus.log');
    const host = '127.0.0.1';
    const port = await startOnFreePort(instance, osUser, api, configFile, webConfigFile, logFile);
    const url = `${api.scheme}://${host}:${port}`;
    const query = async (q: string): Promise<PromApiAnswer> =>
      JSON.parse((await api.post(port, '/api/v1/query', { query: q })).body) as PromApiAnswer;
    return {
      host,
      port,
      url,
      dir,
      logFile,
      query,
      async waitForResult(q, { timeoutMs = 20_000, until } = {}) {
        const deadline = Date.now() + timeoutMs;
        let last: PromApiAnswer | undefined;
        for (;;) {
          last = await query(q);
          const result = last.data?.result ?? [];
          if (last.status === 'success' && result.length > 0 && (!until || until(result))) {
            return result;
          }
          if (Date.now() > deadline) {
            throw new Error(
              `Prometheus: no matching result for ${q} within ${timeoutMs} ms; last answer: ${JSON.stringify(last)}`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      },
      api: async (pathname) => JSON.parse((await api.get(port, pathname)).body) as unknown,
      stop: () => stopInstance(instance),
    };
  } catch (error) {
    await stopInstance(instance);
    throw error;
  }
}

/** Jobs of the same name become one scrape config with a static group each (names are unique). */
function scrapeConfigs(jobs: ScrapeJob[]): object[] {
  const byName = new Map<string, ScrapeJob[]>();
  for (const job of jobs) byName.set(job.job, [...(byName.get(job.job) ?? []), job]);
  return [...byName].map(([name, group]) => ({
    job_name: name,
    metrics_path: group[0]!.metricsPath ?? '/metrics',
    static_configs: group.map((job) => ({ targets: job.targets, labels: job.labels ?? {} })),
  }));
}

async function startOnFreePort(
  instance: Instance,
  osUser: OsUser | null,
  api: ApiClient,
  configFile: string,
  webConfigFile: string | undefined,
  logFile: string,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const log = fs.openSync(logFile, 'a');
    const [cmd, args] = guarded(osUser, BINARY, [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(instance.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...(webConfigFile ? [`--web.config.file=${webConfigFile}`] : []),
    ]);
    const child = spawn(cmd, args, { cwd: instance.dir, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    instance.child = child;
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`)),
    );
    const outcome = await Promise.race([ready(api, port, 30_000), exited]);
    if (outcome === true) return port;
    const text = await readFile(logFile, 'utf8').catch(() => '');
    if (attempt < 3 && /address already in use/i.test(text)) continue;
    child.kill('SIGKILL');
    const tail = text.trim().split('\n').slice(-15).join('\n');
    throw new Error(`prometheus did not become ready (${outcome})\n--- ${logFile} ---\n${tail}`);
  }
}

/** True once GET /-/ready answers 200; a string when the deadline passes. */
async function ready(api: ApiClient, port: number, timeoutMs: number): Promise<true | string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await api.get(port, '/-/ready').then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return `not ready within ${timeoutMs} ms`;
}

interface ApiClient {
  scheme: 'http' | 'https';
  get(port: number, pathname: string): Promise<{ status: number; body: string }>;
  post(
    port: number,
    pathname: string,
    form: Record<string, string>,
  ): Promise<{ status: number; body: string }>;
}

/** The rig's own requests (node:http/https, not poolctl's client): with the CA and credentials. */
function apiClient(web: StartPrometheusOptions['web']): ApiClient {
  const scheme = web?.tls ? 'https' : 'http';
  const auth = web?.basicAuth
    ? `Basic ${Buffer.from(`${web.basicAuth.user}:${web.basicAuth.password}`).toString('base64')}`
    : undefined;
  const send = (
    port: number,
    pathname: string,
    method: 'GET' | 'POST',
    body?: string,
  ): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (auth) headers.authorization = auth;
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const options = { host: '127.0.0.1', port, path: pathname, method, headers, timeout: 5000 };
      const req =
        scheme === 'https'
          ? https.request({ ...options, ca: web!.tls!.caPem, servername: 'localhost' })
          : http.request(options);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(body);
    });
  return {
    scheme,
    get: (port, pathname) => send(port, pathname, 'GET'),
    post: (port, pathname, form) =>
      send(port, pathname, 'POST', new URLSearchParams(form).toString()),
  };
}

function stopInstance(instance: Instance): Promise<void> {
  instance.stopping ??= (async () => {
    live.delete(instance);
    const child = instance.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
    await rm(instance.dir, { recursive: true, force: true });
  })();
  return instance.stopping;
}

/** On an ordinary exit or a signal; a SIGKILLed test process is covered by --pdeathsig. */
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  const stopAllNow = (): void => {
    for (const instance of live) {
      live.delete(instance);
      instance.child?.kill('SIGKILL');
      fs.rmSync(instance.dir, { recursive: true, force: true });
    }
  };
  process.on('exit', stopAllNow);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      stopAllNow();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Removes directories of test processes that died; their servers died with them (pdeathsig). */
async function reapOrphans(): Promise<void> {
  const base = os.tmpdir();
  const names = await readdir(base).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => name.startsWith(DIR_PREFIX))
      .map(async (name) => {
        const dir = path.join(base, name);
        const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => ''));
        if (!owner || isAlive(owner)) return;
        await rm(dir, { recursive: true, force: true });
      }),
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let cachedOsUser: OsUser | null | undefined;

/** As root, Debian's `prometheus` user (the package creates it), else nobody. */
function serverOsUser(): OsUser | null {
  if (cachedOsUser !== undefined) return cachedOsUser;
  if (process.getuid?.() !== 0) return (cachedOsUser = null);
  for (const name of ['prometheus', 'nobody']) {
    const uid = idOf(name, '-u');
    const gid = idOf(name, '-g');
    if (uid !== null && gid !== null && uid !== 0) return (cachedOsUser = { name, uid, gid });
  }
  return (cachedOsUser = null);
}

function idOf(user: string, flag: '-u' | '-g'): number | null {
  const result = spawnSync('id', [flag, user], { encoding: 'utf8' });
  return result.status === 0 ? Number(result.stdout.trim()) : null;
}

let setprivPath: string | null | undefined;

/** `setpriv` drops to the server's user and makes the server die with the test process. */
function guarded(osUser: OsUser | null, cmd: string, args: string[]): [string, string[]] {
  setprivPath ??= ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p)) ?? null;
  if (!setprivPath) return [cmd, args];
  const drop = osUser ? [`--reuid=${osUser.uid}`, `--regid=${osUser.gid}`, '--init-groups'] : [];
  return [setprivPath, [...drop, '--pdeathsig', 'KILL', '--', cmd, ...args]];
}

/** A text exposition Prometheus scrapes, that a test sets and changes at will. */
export interface MetricsEndpoint {
  /** host:port, for a ScrapeJob's `targets`. */
  target: string;
  url: string;
  /** Replaces what the next scrape reads (Prometheus text format, e.g. `db_pool_connections_active{pool="x"} 30`). */
  set(exposition: string): void;
  close(): Promise<void>;
}

/**
 * A tiny static metrics endpoint on 127.0.0.1 serving `exposition` at /metrics: feeds known
 * values (the seed's `db_pool_connections_*`) to a real Prometheus.
 */
export async function startMetricsEndpoint(exposition = ''): Promise<MetricsEndpoint> {
  let text = exposition;
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    target: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}/metrics`,
    set: (next) => {
      text = next;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
