import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { appendFile, chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';

/** A throwaway PostgreSQL on 127.0.0.1 with password (scram-sha-256) authentication over TCP. */
export interface PgServer {
  host: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** server_version_num, e.g. 150018. */
  serverVersionNum: number;
  /** postgres://postgres:<pw>@127.0.0.1:<port>/postgres — superuser. */
  superuserUrl: string;
  /** postgres://app:<pw>@127.0.0.1:<port>/appdb — ordinary role that owns appdb and its orders. */
  appUrl: string;
  url(user: string, password: string, db?: string): string;
  /** Runs SQL as the superuser through psql (-X -A -t -q, ON_ERROR_STOP) and returns its stdout. */
  psql(sql: string, db?: string): Promise<string>;
  /**
   * Creates a LOGIN role that is granted exactly `grants` (e.g. ['pg_monitor',
   * 'pg_signal_backend'], or none) and may connect to appdb; returns its URL to `db` (appdb).
   * The least-privileged accounts of the README, for the tests that prove them.
   */
  createRole(name: string, grants: string[], db?: string): Promise<string>;
  /** `pg_ctl restart -m fast` on the same port: every session ends, as in a server restart. */
  restart(): Promise<void>;
  /** Immediate shutdown and removal of the temporary directory; safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  maxConnections?: number;
  superuserReservedConnections?: number;
  /** Extra postgresql.conf settings, e.g. { idle_session_timeout: '5s' }. */
  settings?: Record<string, string>;
  /** TLS on (ssl = on) with this certificate and key, both PEM text; plain connections still work. */
  tls?: { cert: string; key: string };
}

interface Binaries {
  initdb: string;
  pgCtl: string;
  psql: string;
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

interface Instance {
  dir: string;
  dataDir: string;
  bins: Binaries;
  osUser: OsUser | null;
  stopping?: Promise<void>;
}

const DIR_PREFIX = 'poolctl-pg-';
const live = new Set<Instance>();
let exitHandlerInstalled = false;

/**
 * Starts a fresh cluster in a temporary directory. Call `stop()` in `afterAll`; if this function
 * throws, it has already cleaned up after itself (so `afterAll(() => server?.stop())` is enough).
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PgServer> {
  const bins = findBinaries();
  const osUser = serverOsUser();
  const base = tempBase(osUser);
  await reapOrphans(base, bins, osUser);

  const dir = await mkdtemp(path.join(base, DIR_PREFIX));
  const instance: Instance = { dir, dataDir: path.join(dir, 'data'), bins, osUser };
  live.add(instance);
  installExitHandler();

  try {
    await writeFile(path.join(dir, 'owner.pid'), String(process.pid));
    const superPassword = randomBytes(12).toString('hex');
    const appPassword = randomBytes(12).toString('hex');
    const pwFile = path.join(dir, 'pwfile');
    await writeFile(pwFile, `${superPassword}\n`, { mode: 0o600 });
    if (osUser) {
      await chown(dir, osUser.uid, osUser.gid);
      await chown(pwFile, osUser.uid, osUser.gid);
    }

    await run(
      ...asServerUser(osUser, bins.initdb, [
        '-D',
        instance.dataDir,
        '-U',
        'postgres',
        `--pwfile=${pwFile}`,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--no-locale',
        '--no-sync',
        '--no-instructions',
      ]),
      { cwd: dir },
    );
    await rm(pwFile, { force: true });
    if (opts.tls) await writeTlsFiles(dir, opts.tls, osUser);
    await appendFile(
      path.join(instance.dataDir, 'postgresql.conf'),
      configLines(dir, opts).join('\n') + '\n',
    );

    const logFile = path.join(dir, 'postgres.log');
    const port = await startOnFreePort(instance, logFile);

    const psqlArgs = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', `${port}`];
    const psql = (sql: string, db = 'postgres'): Promise<string> =>
      run(bins.psql, [...psqlArgs, '-U', 'postgres', '-d', db, '-f', '-'], {
        input: sql,
        cwd: dir,
      });

    const versionOut = await psql(`
      CREATE ROLE app LOGIN NOSUPERUSER PASSWORD '${appPassword}';
      CREATE DATABASE appdb OWNER app;
      \\connect appdb app
      CREATE TABLE orders (id serial PRIMARY KEY, status text);
      INSERT INTO orders (status) VALUES ('new'), ('paid'), ('shipped'), ('paid'), ('new');
      SELECT current_setting('server_version_num');
    `);

    const host = '127.0.0.1';
    const url = (user: string, password: string, db = 'postgres'): string =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(db)}`;
    return {
      host,
      port,
      dataDir: instance.dataDir,
      logFile,
      serverVersionNum: Number(versionOut.trim()),
      superuserUrl: url('postgres', superPassword),
      appUrl: url('app', appPassword, 'appdb'),
      url,
      psql,
      createRole: async (name, grants, db = 'appdb') => {
        const password = randomBytes(12).toString('hex');
        const ident = `"${name.replaceAll('"', '""')}"`;
        await psql(
          [
            `CREATE ROLE ${ident} LOGIN NOSUPERUSER PASSWORD '${password}';`,
            `GRANT CONNECT ON DATABASE appdb TO ${ident};`,
            ...grants.map((g) => `GRANT ${g} TO ${ident};`),
          ].join('\n'),
        );
        return url(name, password, db);
      },
      restart: () =>
        run(
          ...asServerUser(osUser, bins.pgCtl, [
            'restart',
            '-D',
            instance.dataDir,
            '-m',
            'fast',
            '-l',
            logFile,
            '-w',
            '-t',
            '30',
          ]),
          { cwd: dir },
        ).then(() => undefined),
      stop: () => stopInstance(instance),
    };
  } catch (error) {
    await stopInstance(instance);
    throw error;
  }
}

function configLines(dir: string, opts: StartPostgresOptions): string[] {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    max_connections: String(opts.maxConnections ?? 30),
    superuser_reserved_connections: String(opts.superuserReservedConnections ?? 3),
    shared_buffers: '16MB',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...(opts.tls && {
      ssl: 'on',
      ssl_cert_file: path.join(dir, 'server.crt'),
      ssl_key_file: path.join(dir, 'server.key'),
    }),
    ...opts.settings,
  };
  // Every value may be quoted in postgresql.conf, numbers and booleans included.
  return Object.entries(settings).map(([k, v]) => `${k} = '${v.replaceAll("'", "''")}'`);
}

/** The server refuses a key that others may read, or that is not its OS user's own. */
async function writeTlsFiles(
  dir: string,
  tls: { cert: string; key: string },
  osUser: OsUser | null,
): Promise<void> {
  for (const [name, pem] of [
    ['server.crt', tls.cert],
    ['server.key', tls.key],
  ] as const) {
    const file = path.join(dir, name);
    await writeFile(file, pem, { mode: 0o600 });
    if (osUser) await chown(file, osUser.uid, osUser.gid);
  }
}

/** The port is passed with -o rather than written to the config, so a bind race can retry. */
async function startOnFreePort(instance: Instance, logFile: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await run(
        ...asServerUser(instance.osUser, instance.bins.pgCtl, [
          'start',
          '-D',
          instance.dataDir,
          '-l',
          logFile,
          '-w',
          '-t',
          '30',
          '-o',
          `-p ${port}`,
        ]),
        { cwd: instance.dir },
      );
      return port;
    } catch (error) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      if (attempt < 3 && /could not bind|Address already in use/i.test(log)) continue;
      const tail = log.trim().split('\n').slice(-15).join('\n');
      throw new Error(`${(error as Error).message}\n--- ${logFile} ---\n${tail}`, { cause: error });
    }
  }
}

function stopInstance(instance: Instance): Promise<void> {
  instance.stopping ??= (async () => {
    live.delete(instance);
    if (fs.existsSync(path.join(instance.dataDir, 'postmaster.pid'))) {
      await run(
        ...asServerUser(instance.osUser, instance.bins.pgCtl, [
          'stop',
          '-D',
          instance.dataDir,
          '-m',
          'immediate',
          '-w',
          '-t',
          '10',
        ]),
        {
          cwd: instance.dir,
        },
      ).catch(() => undefined);
    }
    await rm(instance.dir, { recursive: true, force: true });
  })();
  return instance.stopping;
}

/**
 * If the test process ends without stop(), do not leave servers behind (best effort). Vitest ends
 * its workers with SIGTERM and a SIGKILL 500 ms later, and 'exit' does not fire on a signal, so
 * catch the signals too and signal the postmaster directly: SIGQUIT is what `pg_ctl stop -m
 * immediate` sends, without spawning anything. Servers left by a SIGKILL are reaped on the next
 * start (reapOrphans).
 */
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  const stopAllNow = (): void => {
    for (const instance of live) {
      live.delete(instance);
      const pid = postmasterPid(instance.dataDir);
      if (pid) {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          // already gone
        }
      }
      fs.rmSync(instance.dir, { recursive: true, force: true });
    }
  };
  process.on('exit', stopAllNow);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      stopAllNow();
      // Our listener disabled the default action; restore it if nobody else handles the signal.
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(
      fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    return pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Stops servers left by test processes that were killed before their exit handler ran. */
async function reapOrphans(base: string, bins: Binaries, osUser: OsUser | null): Promise<void> {
  const names = await readdir(base).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => name.startsWith(DIR_PREFIX))
      .map(async (name) => {
        const dir = path.join(base, name);
        const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => ''));
        if (!owner || isAlive(owner)) return;
        await stopInstance({ dir, dataDir: path.join(dir, 'data'), bins, osUser });
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

/** The newest Debian-packaged PostgreSQL, else whatever is on PATH. */
function findBinaries(): Binaries {
  const root = '/usr/lib/postgresql';
  const versions = safeReaddir(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb'))) {
      const psql = path.join(bin, 'psql');
      return {
        initdb: path.join(bin, 'initdb'),
        pgCtl: path.join(bin, 'pg_ctl'),
        psql: fs.existsSync(psql) ? psql : 'psql',
      };
    }
  }
  return { initdb: 'initdb', pgCtl: 'pg_ctl', psql: 'psql' };
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

let cachedOsUser: OsUser | null | undefined;

/** PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user (or nobody). */
function serverOsUser(): OsUser | null {
  if (cachedOsUser !== undefined) return cachedOsUser;
  if (process.getuid?.() !== 0) return (cachedOsUser = null);
  for (const name of ['postgres', 'nobody']) {
    const uid = idOf(name, '-u');
    const gid = idOf(name, '-g');
    if (uid !== null && gid !== null && uid !== 0) return (cachedOsUser = { name, uid, gid });
  }
  throw new Error(
    'PostgreSQL will not run as root and there is no unprivileged "postgres" user; ' +
      "install Debian's postgresql package (it creates one) or run the tests as another user.",
  );
}

function idOf(user: string, flag: '-u' | '-g'): number | null {
  const result = spawnSync('id', [flag, user], { encoding: 'utf8' });
  return result.status === 0 ? Number(result.stdout.trim()) : null;
}

/** As root the temporary directory must be reachable by the server's user; /tmp always is. */
function tempBase(osUser: OsUser | null): string {
  const base = os.tmpdir();
  if (!osUser) return base;
  for (let dir = base; ; dir = path.dirname(dir)) {
    if ((fs.statSync(dir).mode & 0o001) === 0) return '/tmp';
    if (dir === path.dirname(dir)) return base;
  }
}

function asServerUser(osUser: OsUser | null, cmd: string, args: string[]): [string, string[]] {
  return osUser ? ['runuser', ['-u', osUser.name, '--', cmd, ...args]] : [cmd, args];
}

/** The parent's PG* variables (PGHOST, PGOPTIONS, …) must not steer initdb, pg_ctl or psql. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) env[key] = value;
  }
  return env;
}

function run(
  cmd: string,
  args: string[],
  opts: { input?: string; cwd?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: childEnv(), stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else {
        const status = signal ? `signal ${signal}` : `exit ${code}`;
        reject(
          new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${status}): ${stderr.trim()}`),
        );
      }
    });
  });
}
