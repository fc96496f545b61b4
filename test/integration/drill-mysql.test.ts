import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { poolctlBin, repoRoot, runCli } from '../helpers/run-cli.js';

interface DrillDocument {
  poolctl: string;
  command: string;
  target: string;
  held: { idle: number; idleInTx: number; long: number };
  pids: { idle: number[]; idleInTx: number[]; long: number[] };
  outOfSlots: string | null;
}

/** A drill running in the background, its stdout's JSON document read as soon as it is whole. */
interface RunningDrill {
  child: ChildProcessWithoutNullStreams;
  document: Promise<DrillDocument>;
  exit: Promise<{ code: number | null; stdout: string; stderr: string; exitedAt: number }>;
}

const SCRUBBED = /^(PG|MYSQL)|^(DATABASE_URL|FORCE_COLOR)$/;

function startDrill(args: string[]): RunningDrill {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!SCRUBBED.test(k)) env[k] = v;
  Object.assign(env, { CI: 'true', NO_COLOR: '1' });
  const child = spawn(process.execPath, [poolctlBin, 'drill', ...args], { cwd: repoRoot, env });
  let stdout = '';
  let stderr = '';
  child.stdin.end();
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const document = new Promise<DrillDocument>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      try {
        resolve(JSON.parse(stdout) as DrillDocument);
      } catch {
        // not whole yet
      }
    });
    child.once('close', () => reject(new Error(`drill ended before its JSON:\n${stderr}`)));
  });
  document.catch(() => {});
  const exit = new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
    exitedAt: number;
  }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr, exitedAt: Date.now() })),
  );
  return { child, document, exit };
}

/** root's connection; root has SUPER, so on a full server it takes the one extra slot. */
async function connectRoot(server: MariaDBServer): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({ uri: server.rootUrl, connectTimeout: 5_000 });
  conn.on('error', () => undefined);
  return conn;
}

interface ProcessRow {
  id: number;
  command: string;
  time: number;
  info: string | null;
  program: string | null;
  trx: number;
}

/** The process list rows of these connection ids, with program_name and an open InnoDB trx. */
async function processRows(root: mysql.Connection, ids: number[]): Promise<ProcessRow[]> {
  const [rows] = await root.query<mysql.RowDataPacket[]>(
    `SELECT p.ID AS id, p.COMMAND AS command, p.TIME AS time, p.INFO AS info,
            (SELECT a.ATTR_VALUE FROM performance_schema.session_connect_attrs a
              WHERE a.PROCESSLIST_ID = p.ID AND a.ATTR_NAME = 'program_name') AS program,
            (SELECT COUNT(*) FROM information_schema.INNODB_TRX t
              WHERE t.trx_mysql_thread_id = p.ID) AS trx
       FROM information_schema.PROCESSLIST p WHERE p.ID IN (?) ORDER BY p.ID`,
    [ids],
  );
  return rows.map((r) => ({ ...(r as ProcessRow), trx: Number(r.trx) }));
}

/** program|Command(|trx) → count: `api|Sleep`, `worker|Sleep|trx`, `batch|Query`. */
function tally(rows: ProcessRow[]): Record<string, number> {
  const counts: Record<string, number> = {};
  const keys = rows.map((r) => `${r.program}|${r.command}${r.trx > 0 ? '|trx' : ''}`);
  for (const key of keys.sort()) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/**
 * Polls until the sessions are in the expected states: a long session's SLEEP is sent before the
 * document is written, but the server may start it a moment later.
 */
async function waitForStates(
  root: mysql.Connection,
  ids: number[],
  expected: Record<string, number>,
  ms = 3_000,
): Promise<ProcessRow[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await processRows(root, ids);
    const sorted = Object.fromEntries(
      Object.entries(expected).sort(([a], [b]) => (a < b ? -1 : 1)),
    );
    if (JSON.stringify(tally(rows)) === JSON.stringify(sorted) || Date.now() > deadline) {
      expect(tally(rows)).toEqual(expected);
      return rows;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls until none of the ids is in the process list; returns those left at the deadline. */
async function waitGone(root: mysql.Connection, ids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [rows] = await root.query<mysql.RowDataPacket[]>(
      'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID IN (?)',
      [ids],
    );
    const left = rows.map((r) => Number(r.id));
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function appSessions(root: mysql.Connection): Promise<number> {
  const [rows] = await root.query<mysql.RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'app'",
  );
  return Number(rows[0]!.n);
}

const allPids = (d: DrillDocument) => [...d.pids.idle, ...d.pids.idleInTx, ...d.pids.long];

/**
 * Well under the server's own 5-second check for a closed client socket under SLEEP(): gone within
 * this, the statements were ended by the drill, not abandoned to the server.
 */
const RELEASED_WITHIN_MS = 1_000;

describe('poolctl drill against a real MariaDB', () => {
  let server: MariaDBServer;
  let small: MariaDBServer;
  let root: mysql.Connection;

  beforeAll(async () => {
    [server, small] = await Promise.all([
      // The drill's program names are read back from performance_schema.
      startMariaDB({ maxConnections: 30, performanceSchema: true }),
      startMariaDB({ maxConnections: 10, performanceSchema: true }),
    ]);
    root = await connectRoot(server);
  });

  afterAll(async () => {
    await root?.end().catch(() => undefined);
    await Promise.all([server?.stop(), small?.stop()]);
  });

  it('holds exactly the sessions asked for, in their states, for --hold, then releases them', async () => {
    const drill = startDrill([
      '--mysql',
      server.appUrl,
      '--idle',
      '6',
      '--idle-in-tx',
      '4',
      '--long',
      '3',
      '--hold',
      '3s',
      '--batch-size',
      '5',
      '--output',
      'json',
    ]);
    const doc = await drill.document;
    expect(doc).toMatchObject({
      command: 'drill',
      held: { idle: 6, idleInTx: 4, long: 3 },
      outOfSlots: null,
    });
    expect(doc.target).toMatch(/^mysql:\/\/app@127\.0\.0\.1:\d+\/appdb$/);
    expect(new Set(allPids(doc)).size).toBe(13);

    // The process list, the program names (performance_schema.session_connect_attrs) and InnoDB's
    // open transactions: the idle-in-transaction sessions really hold one, the others do not.
    const rows = await waitForStates(root, allPids(doc), {
      'api|Sleep': 6,
      'batch|Query': 3,
      'worker|Sleep|trx': 4,
    });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of doc.pids.long) expect(byId.get(id)?.info).toBe('SELECT SLEEP(13)');
    for (const id of doc.pids.idleInTx) expect(byId.get(id)?.trx).toBe(1);
    for (const r of rows) expect(r.time).toBeLessThan(3);
    expect(await appSessions(root)).toBe(13);

    const { code, stdout, stderr } = await drill.exit;
    expect(code).toBe(0);
    // stdout is the JSON document alone; the rest went to stderr.
    expect(JSON.parse(stdout)).toEqual(doc);
    expect(stderr).toContain('Holding 13 sessions');
    expect(stderr).toContain('Released 13 sessions.');
    expect(await waitGone(root, allPids(doc), RELEASED_WITHIN_MS)).toEqual([]);
    expect(await appSessions(root)).toBe(0);
  });

  it('releases everything on Ctrl-C and exits 0, reporting sessions killed from outside', async () => {
    const drill = startDrill([
      '--mysql',
      server.appUrl,
      '--idle',
      '5',
      '--idle-in-tx',
      '2',
      '--long',
      '4',
      '--app-names',
      'web',
      '--output',
      'json',
    ]);
    const doc = await drill.document;
    await waitForStates(root, allPids(doc), {
      'web|Query': 4,
      'web|Sleep': 5,
      'web|Sleep|trx': 2,
    });
    // Someone else frees two idle sessions and cancels one long statement.
    const [a, b] = doc.pids.idle;
    await root.query(`KILL CONNECTION ${a}`);
    await root.query(`KILL CONNECTION ${b}`);
    await root.query(`KILL QUERY ${doc.pids.long[0]}`);
    await new Promise((r) => setTimeout(r, 500));

    drill.child.kill('SIGINT');
    const { code, stderr } = await drill.exit;
    expect(code).toBe(0);
    expect(stderr).toContain('2 sessions ended from outside (2 idle)');
    expect(stderr).toContain(
      '1 long statement cancelled from outside: Query execution was interrupted',
    );
    expect(stderr).toContain('Released 9 sessions (2 had ended from outside).');
    // The SLEEP() sessions really ended on the server, not just their sockets.
    expect(await waitGone(root, allPids(doc), RELEASED_WITHIN_MS)).toEqual([]);
    expect(await appSessions(root)).toBe(0);
  });

  it('ends long statements through a connection of its own when it holds nothing idle (SIGTERM)', async () => {
    const drill = startDrill(['--mysql', server.appUrl, '--long', '3', '--output', 'json']);
    const doc = await drill.document;
    await waitForStates(root, doc.pids.long, { 'batch|Query': 3 });
    drill.child.kill('SIGTERM');
    const { code, stderr } = await drill.exit;
    expect(code).toBe(0);
    expect(stderr).toContain('Released 3 sessions.');
    expect(stderr).not.toContain('from outside');
    expect(await waitGone(root, doc.pids.long, RELEASED_WITHIN_MS)).toEqual([]);
    expect(await appSessions(root)).toBe(0);
  });

  it('holds what the server allowed when it runs out of slots part-way (error 1040)', async () => {
    // max_connections 10 (MariaDB's minimum): the app account gets 10 of the 14 asked for (the one
    // extra slot is kept for SUPER). All 14 connect at once.
    const drill = startDrill([
      '--mysql',
      small.appUrl,
      '--idle',
      '10',
      '--long',
      '4',
      '--batch-size',
      '14',
      '--hold',
      '2s',
      '--output',
      'json',
    ]);
    const doc = await drill.document;
    // Only now: root connected before would take one of the 10 ordinary slots.
    const smallRoot = await connectRoot(small);
    try {
      expect(doc.held.idle + doc.held.idleInTx + doc.held.long).toBe(10);
      expect(doc.held.long).toBeGreaterThan(0);
      expect(doc.outOfSlots).toMatch(/Too many connections/);
      expect(await appSessions(smallRoot)).toBe(10);
      const { code, stderr } = await drill.exit;
      expect(code).toBe(0);
      expect(stderr).toMatch(/ran out of connection slots after 10 of 14 .*holding those 10/);
      expect(stderr.match(/Too many connections/g)).toHaveLength(1);
      expect(await waitGone(smallRoot, allPids(doc), RELEASED_WITHIN_MS)).toEqual([]);
    } finally {
      await smallRoot.end().catch(() => undefined);
    }
  });

  it('frees a server full of its SLEEP() sessions alone, where no slot is left to KILL from', async () => {
    const drill = startDrill([
      '--mysql',
      small.appUrl,
      '--long',
      '12',
      '--batch-size',
      '12',
      '--output',
      'json',
    ]);
    const doc = await drill.document;
    const smallRoot = await connectRoot(small);
    try {
      expect(doc.held.long).toBe(10);
      await waitForStates(smallRoot, doc.pids.long, { 'batch|Query': 10 });
      const signalled = Date.now();
      drill.child.kill('SIGINT');
      const { code, stderr, exitedAt } = await drill.exit;
      expect(code).toBe(0);
      expect(stderr).toContain('Released 10 sessions.');
      // It closes their sockets, which the server notices within 5 s (its liveness check under
      // SLEEP), and watches the process list until they are gone: by the time it exits, nothing
      // is left.
      expect(exitedAt - signalled).toBeLessThan(8_000);
      expect(await waitGone(smallRoot, doc.pids.long, 200)).toEqual([]);
    } finally {
      await smallRoot.end().catch(() => undefined);
    }
  });

  it('refuses a host that is not loopback without connecting (exit 2)', async () => {
    // TEST-NET-3: nothing answers there; a connect attempt would take the 5s connect timeout.
    const result = await runCli([
      'drill',
      '--mysql',
      'mysql://app@203.0.113.7:3306/appdb',
      '--idle',
      '1',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/refuses 203\.0\.113\.7 .*loopback.*--allow-remote/);
    expect(result.durationMs).toBeLessThan(4000);
    expect(result.stdout).toBe('');
  });

  it('exits 3 on another connect error, with nothing left open', async () => {
    const url = server.url('app', 'wrong-password', 'appdb');
    const result = await runCli(['drill', '--mysql', url, '--idle', '3', '--long', '2']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^poolctl: mysql:\/\/app@.*access denied for user "app"/m);
    expect(result.stderr).not.toContain('Error:');
    expect(await appSessions(root)).toBe(0);
  });
});
