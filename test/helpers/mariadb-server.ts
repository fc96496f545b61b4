import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { freePort } from './free-port.js';

/** A throwaway MariaDB on 127.0.0.1 with password (mysql_native_password) authentication. */
export interface MariaDBServer {
  host: string;
  port: number;
  /** The server's Unix socket (root may log in through it as well). */
  socket: string;
  dataDir: string;
  logFile: string;
  /** `SELECT VERSION()`, e.g. 10.11.19-MariaDB-0+deb12u1. */
  version: string;
  /** mysql://root:<pw>@127.0.0.1:<port>/ — ALL PRIVILEGES, SUPER and CONNECTION ADMIN included. */
  rootUrl: string;
  /** mysql://app:<pw>@127.0.0.1:<port>/appdb — ordinary account: ALL on appdb.* and nothing global. */
  appUrl: string;
  url(user: string, password: string, db?: string): string;
  /**
   * Creates one of the least-privileged accounts the README documents (ACCOUNT_GRANTS), named
   * `user`, and returns its URL.
   */
  createAccount(kind: LeastPrivilegedAccount, user?: string): Promise<string>;
  /** Runs SQL as root through the mariadb client (batch mode, no column names); returns stdout. */
  sql(statements: string, db?: string): Promise<string>;
  /** Immediate shutdown (SIGKILL) and removal of the temporary directory; safe to call twice. */
  stop(): Promise<void>;
}

export interface StartMariaDBOptions {
  /** max_connections; default 30. */
  maxConnections?: number;
  /**
   * The Performance Schema, where connection attributes such as program_name are recorded. Off by
   * default, as MariaDB ships (stock settings are the honest test); on for the tests that need
   * program names.
   */
  performanceSchema?: boolean;
  /** Extra server options, e.g. { wait_timeout: '5' } → `--wait_timeout=5`. */
  settings?: Record<string, string>;
  /** TLS with this certificate and key, both PEM text; plain connections still work. */
  tls?: { cert: string; key: string };
}

/**
 * The least-privileged accounts poolctl is proven with (the README's on-call accounts):
 * - `oncall`: what an on-call engineer gets to see every connection and kill any: PROCESS,
 *   CONNECTION ADMIN (MariaDB spells it with a space) and SUPER (MariaDB 10.11 still asks for it
 *   in places, e.g. the extra connection), and nothing on performance_schema or the mysql schema.
 *   It reads only its own grants: other accounts' superuser status is unknown to it.
 * - `oncall-reads-grants`: the same plus SELECT on the mysql schema, the least that makes
 *   information_schema.USER_PRIVILEGES (and SHOW GRANTS FOR) show other accounts on MariaDB
 *   10.11. A table grant on mysql.global_priv or mysql.user does not (measured).
 * - `process-only`: PROCESS alone: sees every connection, may kill only its own.
 */
export type LeastPrivilegedAccount = 'oncall' | 'oncall-reads-grants' | 'process-only';

export const ACCOUNT_GRANTS: Record<LeastPrivilegedAccount, string[]> = {
  oncall: ['GRANT PROCESS, CONNECTION ADMIN, SUPER ON *.* TO {account}'],
  'oncall-reads-grants': [
    'GRANT PROCESS, CONNECTION ADMIN, SUPER ON *.* TO {account}',
    'GRANT SELECT ON mysql.* TO {account}',
  ],
  'process-only': ['GRANT PROCESS ON *.* TO {account}'],
};

interface Binaries {
  installDb: string;
  mariadbd: string;
  client: string;
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

interface Instance {
  dir: string;
  child?: ChildProcess;
  stopping?: Promise<void>;
}

const DIR_PREFIX = 'poolctl-mariadb-';
const READY_TIMEOUT_MS = 30_000;
const live = new Set<Instance>();
let exitHandlerInstalled = false;

/**
 * Starts a fresh server in a temporary directory: `mariadb-install-db` (which also runs the setup
 * SQL, so there is no round of statements after the start), then `mariadbd` on a free loopback
 * port. Call `stop()` in `afterAll`; if this function throws, it has already cleaned up.
 *
 * Leak-free: mariadbd runs under `setpriv --pdeathsig KILL`, so the kernel kills it when the test
 * process dies, however it dies (SIGKILL included); directories left behind are reaped on the next
 * start, and the exit handler removes them on an ordinary exit or signal.
 */
export async function startMariaDB(opts: StartMariaDBOptions = {}): Promise<MariaDBServer> {
  const bins = findBinaries();
  const osUser = serverOsUser();
  const base = tempBase(osUser);
  await reapOrphans(base);

  const dir = await mkdtemp(path.join(base, DIR_PREFIX));
  const instance: Instance = { dir };
  live.add(instance);
  installExitHandler();

  try {
    await writeFile(path.join(dir, 'owner.pid'), String(process.pid));
    if (osUser) await chown(dir, osUser.uid, osUser.gid);
    const rootPassword = randomBytes(12).toString('hex');
    const appPassword = randomBytes(12).toString('hex');
    const dataDir = path.join(dir, 'data');
    const socket = path.join(dir, 'mysqld.sock');
    const logFile = path.join(dir, 'mariadb.log');

    // Run by the bootstrap server right after the system tables. --cross-bootstrap leaves out the
    // root@<hostname> account; root@127.0.0.1 and root@::1 exist without a password until here.
    const setupFile = path.join(dir, 'setup.sql');
    await writeFile(
      setupFile,
      `FLUSH PRIVILEGES;
ALTER USER root@localhost IDENTIFIED BY '${rootPassword}', root@'127.0.0.1' IDENTIFIED BY '${rootPassword}', root@'::1' IDENTIFIED BY '${rootPassword}';
CREATE USER app@'%' IDENTIFIED BY '${appPassword}';
CREATE DATABASE appdb;
GRANT ALL ON appdb.* TO app@'%';
CREATE TABLE appdb.orders (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(20)) ENGINE=InnoDB;
INSERT INTO appdb.orders (status) VALUES ('new'), ('paid'), ('shipped'), ('paid'), ('new');
`,
      { mode: 0o600 },
    );
    // Each server its own tmpdir: at start-up a server removes the #sql* files it finds there,
    // which would be another server's temporary tables in a shared /tmp. InnoDB's redo log and
    // buffer pool are sized for tests: 4 MB and 16 MB.
    const tmpDir = path.join(dir, 'tmp');
    await mkdir(tmpDir);
    if (osUser) await chown(tmpDir, osUser.uid, osUser.gid);
    const common = [
      `--tmpdir=${tmpDir}`,
      '--innodb-log-file-size=4M',
      '--innodb-buffer-pool-size=16M',
    ];
    await run(bins.installDb, [
      '--no-defaults',
      '--auth-root-authentication-method=normal',
      `--datadir=${dataDir}`,
      ...(osUser ? [`--user=${osUser.name}`] : []),
      '--skip-test-db',
      '--skip-name-resolve',
      '--cross-bootstrap',
      `--extra-file=${setupFile}`,
      ...common,
    ]);
    await rm(setupFile, { force: true });

    if (opts.tls) {
      for (const [name, pem] of [
        ['server.crt', opts.tls.cert],
        ['server.key', opts.tls.key],
      ] as const) {
        await writeFile(path.join(dir, name), pem, { mode: 0o600 });
        if (osUser) await chown(path.join(dir, name), osUser.uid, osUser.gid);
      }
    }
    const settings: Record<string, string> = {
      'performance-schema': opts.performanceSchema ? 'ON' : 'OFF',
      ...(opts.tls && {
        'ssl-cert': path.join(dir, 'server.crt'),
        'ssl-key': path.join(dir, 'server.key'),
      }),
      ...opts.settings,
    };
    const serverArgs = [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--pid-file=${path.join(dir, 'mysqld.pid')}`,
      `--log-error=${logFile}`,
      '--bind-address=127.0.0.1',
      '--skip-name-resolve',
      '--skip-log-bin',
      `--max-connections=${opts.maxConnections ?? 30}`,
      '--innodb-flush-log-at-trx-commit=0',
      '--skip-innodb-doublewrite',
      ...common,
      ...Object.entries(settings).map(([k, v]) => `--${k}=${v}`),
    ];
    const port = await startOnFreePort(instance, bins, osUser, serverArgs, socket, logFile);

    const host = '127.0.0.1';
    const url = (user: string, password: string, db = ''): string =>
      `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(db)}`;
    const sql = (statements: string, db?: string): Promise<string> =>
      run(
        bins.client,
        [
          '--no-defaults',
          `--socket=${socket}`,
          '--user=root',
          '--batch',
          '--skip-column-names',
          ...(db ? [`--database=${db}`] : []),
        ],
        { input: statements, env: { MYSQL_PWD: rootPassword } },
      );
    const version = (await sql('SELECT VERSION();')).trim();
    return {
      host,
      port,
      socket,
      dataDir,
      logFile,
      version,
      rootUrl: url('root', rootPassword),
      appUrl: url('app', appPassword, 'appdb'),
      url,
      sql,
      async createAccount(kind, user = kind.replace(/-/g, '_')) {
        const password = randomBytes(12).toString('hex');
        const account = `'${user}'@'%'`;
        await sql(
          [
            `CREATE USER ${account} IDENTIFIED BY '${password}';`,
            ...ACCOUNT_GRANTS[kind].map((g) => `${g.replace('{account}', account)};`),
          ].join('\n'),
        );
        return url(user, password);
      },
      stop: () => stopInstance(instance),
    };
  } catch (error) {
    await stopInstance(instance);
    throw error;
  }
}

/** The port goes on the command line, so a lost bind race can retry with another. */
async function startOnFreePort(
  instance: Instance,
  bins: Binaries,
  osUser: OsUser | null,
  serverArgs: string[],
  socket: string,
  logFile: string,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const [cmd, args] = guarded(osUser, bins.mariadbd, [...serverArgs, `--port=${port}`]);
    const child = spawn(cmd, args, { cwd: instance.dir, env: childEnv(), stdio: 'ignore' });
    instance.child = child;
    let ended: string | undefined;
    const exited = new Promise<{ how: string }>((resolve) => {
      const done = (how: string): void => {
        ended = how;
        resolve({ how });
      };
      child.once('error', (error) => done(error.message));
      child.once('exit', (code, signal) => done(signal ? `signal ${signal}` : `exit ${code}`));
    });
    const outcome = await Promise.race([waitUntilReady(socket, () => ended !== undefined), exited]);
    if (outcome === 'ready') return port;
    const log = await readFile(logFile, 'utf8').catch(() => '');
    if (
      typeof outcome === 'object' &&
      attempt < 3 &&
      /Address already in use|Bind on TCP/i.test(log)
    ) {
      await rm(logFile, { force: true });
      continue;
    }
    const tail = log.trim().split('\n').slice(-15).join('\n');
    const why = typeof outcome === 'object' ? `mariadbd ended (${outcome.how})` : outcome;
    throw new Error(`MariaDB did not start: ${why}\n--- ${logFile} ---\n${tail}`);
  }
}

/** Resolves 'ready' once root answers on the socket, or a reason after the timeout. */
async function waitUntilReady(socket: string, gone: () => boolean): Promise<'ready' | string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline && !gone()) {
    if (fs.existsSync(socket)) {
      try {
        // root@localhost has its password by now; an access-denied answer means "up" as well.
        const conn = await mysql.createConnection({ socketPath: socket, user: 'root' });
        await conn.end();
        return 'ready';
      } catch (error) {
        const { errno, message } = error as { errno?: number; message: string };
        if (errno === 1045) return 'ready';
        last = message;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (gone()) return 'mariadbd ended';
  return `no answer on ${socket} within ${READY_TIMEOUT_MS / 1000}s (${last || 'no socket'})`;
}

function stopInstance(instance: Instance): Promise<void> {
  instance.stopping ??= (async () => {
    live.delete(instance);
    const child = instance.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await gone;
    }
    await rm(instance.dir, { recursive: true, force: true });
  })();
  return instance.stopping;
}

/**
 * Ordinary exit or a signal: kill the servers and remove their directories synchronously. A SIGKILL
 * of the test process is covered by --pdeathsig; its directories by reapOrphans.
 */
function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  const stopAllNow = (): void => {
    for (const instance of live) {
      live.delete(instance);
      try {
        instance.child?.kill('SIGKILL');
      } catch {
        // already gone
      }
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
async function reapOrphans(base: string): Promise<void> {
  const names = await readdir(base).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => name.startsWith(DIR_PREFIX))
      .map(async (name) => {
        const dir = path.join(base, name);
        const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => ''));
        if (!owner || isAlive(owner)) return;
        // Belt and braces for a server started without setpriv: its pid file names it.
        const pid = Number(await readFile(path.join(dir, 'mysqld.pid'), 'utf8').catch(() => ''));
        if (pid > 0 && isMariadbd(pid)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
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

function isMariadbd(pid: number): boolean {
  try {
    return /mariadbd|mysqld/.test(fs.readFileSync(`/proc/${pid}/comm`, 'utf8'));
  } catch {
    return false;
  }
}

function findBinaries(): Binaries {
  const which = (names: string[], dirs: string[]): string => {
    for (const name of names) {
      for (const dir of dirs) {
        const candidate = path.join(dir, name);
        if (fs.existsSync(candidate)) return candidate;
      }
    }
    throw new Error(
      `MariaDB is not installed (no ${names.join(' or ')}): ` +
        'apt-get install -y --no-install-recommends mariadb-server mariadb-client',
    );
  };
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/bin'];
  return {
    installDb: which(['mariadb-install-db', 'mysql_install_db'], dirs),
    mariadbd: which(['mariadbd', 'mysqld'], dirs),
    client: which(['mariadb', 'mysql'], dirs),
  };
}

let cachedOsUser: OsUser | null | undefined;

/** As root, the server runs as Debian's `mysql` user (mariadbd refuses root without --user). */
function serverOsUser(): OsUser | null {
  if (cachedOsUser !== undefined) return cachedOsUser;
  if (process.getuid?.() !== 0) return (cachedOsUser = null);
  for (const name of ['mysql', 'nobody']) {
    const uid = idOf(name, '-u');
    const gid = idOf(name, '-g');
    if (uid !== null && gid !== null && uid !== 0) return (cachedOsUser = { name, uid, gid });
  }
  throw new Error('no unprivileged "mysql" user to run MariaDB as; install mariadb-server');
}

function idOf(user: string, flag: '-u' | '-g'): number | null {
  const result = spawnSync('id', [flag, user], { encoding: 'utf8' });
  return result.status === 0 ? Number(result.stdout.trim()) : null;
}

let setprivPath: string | null | undefined;

/**
 * `setpriv` (util-linux) drops to the server's user and sets the parent-death signal after the
 * switch (a setuid inside mariadbd would clear it), so the server dies with the test process.
 */
function guarded(osUser: OsUser | null, cmd: string, args: string[]): [string, string[]] {
  setprivPath ??= ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p)) ?? null;
  if (!setprivPath) return [cmd, osUser ? [...args, `--user=${osUser.name}`] : args];
  const drop = osUser ? [`--reuid=${osUser.uid}`, `--regid=${osUser.gid}`, '--init-groups'] : [];
  return [setprivPath, [...drop, '--pdeathsig', 'KILL', '--', cmd, ...args]];
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

/** The parent's MYSQL_* variables (MYSQL_HOST, MYSQL_PWD, …) must not steer the tools. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MYSQL')) env[key] = value;
  }
  return { ...env, ...extra };
}

function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: childEnv(opts.env), stdio: 'pipe' });
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
          new Error(
            `${path.basename(cmd)} ${args.join(' ')} failed (${status}): ${(stderr || stdout).trim()}`,
          ),
        );
      }
    });
  });
}
