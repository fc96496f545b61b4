import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDrillOptions } from '../../src/commands/drill.js';
import { isLoopbackHost } from '../../src/drill/loopback.js';
import { interleave } from '../../src/drill/open.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
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
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
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
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, document, exit };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** application_name|state → count, for these backends. */
async function statesOf(url: string, pids: number[]): Promise<Record<string, number>> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ key: string; n: number }>(
      `SELECT application_name || '|' || state AS key, count(*)::int AS n
       FROM pg_stat_activity WHERE pid = ANY($1) GROUP BY 1`,
      [pids],
    );
    return Object.fromEntries(rows.map((r) => [r.key, r.n]));
  });
}

/** Polls until none of the pids is in pg_stat_activity; returns those left at the deadline. */
async function waitGone(url: string, pids: number[], ms = 3000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = await withClient(url, async (c) => {
      const { rows } = await c.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)',
        [pids],
      );
      return rows.map((r) => r.pid);
    });
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function appSessions(server: PgServer): Promise<number> {
  return Number(await server.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"));
}

const allPids = (d: DrillDocument) => [...d.pids.idle, ...d.pids.idleInTx, ...d.pids.long];

describe('poolctl drill against a real PostgreSQL', () => {
  let server: PgServer;
  let small: PgServer;

  beforeAll(async () => {
    [server, small] = await Promise.all([
      startPostgres({ maxConnections: 30, superuserReservedConnections: 3 }),
      startPostgres({ maxConnections: 10, superuserReservedConnections: 3 }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.stop(), small?.stop()]);
  });

  it('holds exactly the sessions asked for, in their states, for --hold, then releases them', async () => {
    const drill = startDrill([
      '--pg',
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
    expect(doc.target).toMatch(/^postgres:\/\/app@127\.0\.0\.1:\d+\/appdb$/);
    expect(new Set(allPids(doc)).size).toBe(13);
    expect(await statesOf(server.superuserUrl, allPids(doc))).toEqual({
      'api|idle': 6,
      'worker|idle in transaction': 4,
      'batch|active': 3,
    });
    expect(await appSessions(server)).toBe(13);

    const { code, stdout, stderr } = await drill.exit;
    expect(code).toBe(0);
    // stdout is the JSON document alone; the rest went to stderr.
    expect(JSON.parse(stdout)).toEqual(doc);
    expect(stderr).toContain('Holding 13 sessions');
    expect(stderr).toContain('Released 13 sessions.');
    expect(await waitGone(server.superuserUrl, allPids(doc))).toEqual([]);
  });

  it('releases everything on Ctrl-C and exits 0, reporting sessions killed from outside', async () => {
    const drill = startDrill([
      '--pg',
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
    expect(await statesOf(server.superuserUrl, allPids(doc))).toEqual({
      'web|idle': 5,
      'web|idle in transaction': 2,
      'web|active': 4,
    });
    // Someone else frees two idle sessions and cancels one long statement.
    await server.psql(
      `SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[${doc.pids.idle.slice(0, 2).join(',')}]) pid;
       SELECT pg_cancel_backend(${doc.pids.long[0]});`,
    );
    await new Promise((r) => setTimeout(r, 500));

    drill.child.kill('SIGINT');
    const { code, stderr } = await drill.exit;
    expect(code).toBe(0);
    expect(stderr).toContain('2 sessions ended from outside (2 idle)');
    expect(stderr).toContain('1 long statement cancelled from outside');
    expect(stderr).toContain('Released 9 sessions (2 had ended from outside).');
    // The pg_sleep sessions really ended on the server, not just their sockets.
    expect(await waitGone(server.superuserUrl, allPids(doc))).toEqual([]);
    expect(await appSessions(server)).toBe(0);
  });

  it('holds what the server allowed when it runs out of slots part-way', async () => {
    // 10 slots, 3 reserved for superusers: the app role gets 7 of the 12 asked for. All 12 connect
    // at once: near the limit concurrent connects can all be refused while slots remain, and the
    // drill fills those one at a time.
    const drill = startDrill([
      '--pg',
      small.appUrl,
      '--idle',
      '9',
      '--long',
      '3',
      '--batch-size',
      '12',
      '--hold',
      '2s',
      '--output',
      'json',
    ]);
    const doc = await drill.document;
    expect(doc.held.idle + doc.held.idleInTx + doc.held.long).toBe(7);
    expect(doc.outOfSlots).toMatch(/remaining connection slots are reserved|too many clients/);
    expect(await appSessions(small)).toBe(7);
    const { code, stderr } = await drill.exit;
    expect(code).toBe(0);
    expect(stderr).toMatch(/ran out of connection slots after 7 of 12 .*holding those 7/);
    expect(await waitGone(small.superuserUrl, allPids(doc))).toEqual([]);
  });

  it('refuses a host that is not loopback without connecting (exit 2)', async () => {
    // TEST-NET-3: nothing answers there; a connect attempt would take the 5s connect timeout.
    const result = await runCli([
      'drill',
      '--pg',
      'postgres://app@203.0.113.7:5432/app',
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
    const result = await runCli(['drill', '--pg', url, '--idle', '3', '--long', '2']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^poolctl: .*password authentication failed for user "app"/m);
    expect(result.stderr).not.toContain('Error:');
    expect(await appSessions(server)).toBe(0);
  });
});

describe('drill options and guards', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['/var/run/postgresql', true],
    ['128.0.0.1', false],
    ['10.0.0.5', false],
    ['::2', false],
    ['db.internal', false],
    ['localhost.example.com', false],
    ['::ffff:10.0.0.1', false],
  ])('isLoopbackHost(%s) is %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });

  it('parses counts, hold, app names and batch size', () => {
    const opts = parseDrillOptions({
      pg: 'postgres://app@127.0.0.1:5432/app',
      idle: '3',
      idleInTx: '2',
      hold: '1m30s',
      appNames: 'a,b,c',
      batchSize: '10',
    });
    expect(opts).toMatchObject({
      counts: { idle: 3, idleInTx: 2, long: 0 },
      holdSeconds: 90,
      applications: { idle: 'a', idleInTx: 'b', long: 'c' },
      batchSize: 10,
      allowRemote: false,
      output: 'human',
    });
    expect(parseDrillOptions({ long: '1' }).applications).toEqual({
      idle: 'api',
      idleInTx: 'worker',
      long: 'batch',
    });
    expect(parseDrillOptions({ long: '1', appNames: 'one' }).applications.idleInTx).toBe('one');
  });

  it.each([
    [{}, /nothing to hold/],
    [{ idle: '-1' }, /--idle -1/],
    [{ idle: '2', hold: '0s' }, /--hold 0s/],
    [{ idle: '2', hold: 'soon' }, /--hold soon/],
    [{ idle: '2', appNames: 'a,b' }, /one name .* or three/],
    [{ idle: '2', appNames: 'a,,c' }, /not 1–63 printable ASCII/],
    [{ idle: '2', batchSize: '0' }, /--batch-size 0/],
    [{ idle: '2', output: 'yaml' }, /--output yaml/],
  ])('rejects %j', (flags, message) => {
    expect(() => parseDrillOptions(flags)).toThrow(message);
  });

  it('interleaves the kinds in proportion', () => {
    expect(interleave({ idle: 4, idleInTx: 2, long: 2 })).toEqual([
      'idle',
      'idleInTx',
      'long',
      'idle',
      'idle',
      'idleInTx',
      'long',
      'idle',
    ]);
  });
});
