// Kill benchmark (MariaDB): 1,000 sleeping connections, poolctl against pt-kill and the client.
//
//   npm run build && npx tsx bench/kill-mysql.ts [--runs 3]
//
// Each run of each contender opens a fresh set of 1,000 sleeping connections (user app, program
// api, opened 50 at a time) on a throwaway MariaDB (max_connections 1100), lets them age past
// 1 s, then starts the contender and measures, from its start, the time until the last victim has
// left the process list (a separate connection, user `watcher`, polls every 5 ms) and the
// contender's own wall time:
//   (a) poolctl mitigate --action kill-idle --set kill_idle_after=1s --yes --output json --mysql …,
//       the package as users install it (npm pack, installed into a temporary prefix once per run)
//   (b) pt-kill --match-command Sleep --kill --victims all --run-time 1 (Percona Toolkit), plus the
//       connection flags, --interval 1 (else it sleeps its default 30 s before it notices that
//       --run-time has passed) and --ignore-user watcher (else it kills the watcher when it sleeps)
//   (c) one `mariadb` client call reading the 1,000 `KILL CONNECTION id;` statements on stdin
//   (d) node -e 0, for Node's start-up
// Issue 13's target: poolctl's time to relief minus Node's start-up is at most pt-kill's, in the
// same run. Also issue 8's: poolctl's wall time is at most the client batch's + Node's start-up +
// 150 ms. It only prints: exit 0 unless a run fails.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { startMariaDB, type MariaDBServer } from '../test/helpers/mariadb-server.js';
import { holdMysqlSessions } from '../test/helpers/mysql-sessions.js';
import { cleanEnv, median, root, timed, installedPoolctl, type Run } from './lib.js';

const VICTIMS = 1000;
const SLACK_MS = 150;
const WATCHER_PASSWORD = 'watcher-pw';

const { values: flags } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, hold: { type: 'string' } },
});

/**
 * The victims live in a child process (this file again, with --hold URL): when a contender kills
 * them, the 1,000 socket closes keep that process busy (≈ 40 ms here), and in this one they would
 * delay the watcher's polls, and so the time to relief it measures.
 */
if (flags.hold) {
  const held = await holdMysqlSessions(flags.hold, { sleep: VICTIMS, programNames: ['api'] });
  process.stdout.write(`${JSON.stringify(held.ids)}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void held.close().then(() => process.exit(0)));
  await new Promise(() => {});
}

interface Victims {
  ids: number[];
  close(): Promise<void>;
}

/** Opens a fresh set of victims in a child process; `close()` ends it and what is left of them. */
function holdVictims(url: string): Promise<Victims> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--hold', url],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (!out.includes('\n')) return;
      resolve({
        ids: JSON.parse(out) as number[],
        close: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
    child.once('exit', (code) => reject(new Error(`the victims' process exited (${code})`)));
  });
}
const runs = Number(flags.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`bench/kill-mysql: --runs ${flags.runs}: expected a whole number above 0`);
  process.exit(2);
}
if (!existsSync(path.join(root, 'dist', 'cli.js'))) {
  console.error('bench/kill-mysql: dist/ is incomplete: run `npm run build` first');
  process.exit(1);
}

function onPath(cmd: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** Spawns the contender and polls until every victim is gone: time to relief and wall time. */
async function relief(
  watcher: mysql.Connection,
  ids: number[],
  start: () => Promise<Run>,
  ok: (run: Run) => boolean,
): Promise<{ reliefMs: number; wallMs: number; run: Run }> {
  const poll = `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID IN (${ids.join(',')})`;
  const started = performance.now();
  const running = start();
  let reliefMs = Number.NaN;
  for (;;) {
    const [rows] = await watcher.query<mysql.RowDataPacket[]>(poll);
    if (Number(rows[0]!.n) === 0) {
      reliefMs = performance.now() - started;
      break;
    }
    if (performance.now() - started > 30_000) {
      const run = await running;
      const [left] = await watcher.query<mysql.RowDataPacket[]>(
        `SELECT ID, USER, COMMAND, TIME, STATE FROM information_schema.PROCESSLIST WHERE ID IN (${ids.join(',')})`,
      );
      throw new Error(
        `${rows[0]!.n} victims still there after 30 s: ${JSON.stringify(left)} ` +
          `(exit ${run.code}: ${run.stderr.trim()}; stdout: ${run.stdout.slice(0, 2000)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const run = await running;
  if (!ok(run)) throw new Error(`exit ${run.code}: ${run.stderr.trim() || run.stdout.trim()}`);
  return { reliefMs, wallMs: run.ms, run };
}

async function main(): Promise<void> {
  const { bin } = installedPoolctl('kill-mysql');
  const home = mkdtempSync(path.join(tmpdir(), 'poolctl-bench-'));
  let server: MariaDBServer | undefined;
  let held: Victims | undefined;
  let watcher: mysql.Connection | undefined;
  try {
    const ptKill = onPath('pt-kill');
    if (!ptKill) {
      const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
      console.log(
        `pt-kill is not installed: ${sudo}apt-get install -y percona-toolkit (skipping it this time)`,
      );
    }
    const client = onPath('mariadb') ?? onPath('mysql');
    if (!client) throw new Error('no mariadb client: apt-get install -y mariadb-client');

    console.log(`starting MariaDB (max_connections 1100); ${runs} runs of ${VICTIMS} victims each`);
    server = await startMariaDB({ maxConnections: 1100 });
    await server.sql(
      `CREATE USER watcher@'%' IDENTIFIED BY '${WATCHER_PASSWORD}'; GRANT PROCESS ON *.* TO watcher@'%';`,
    );
    watcher = await mysql.createConnection({ uri: server.url('watcher', WATCHER_PASSWORD) });
    const rootUrl = new URL(server.rootUrl);
    const password = decodeURIComponent(rootUrl.password);
    const env = cleanEnv(home);
    const port = String(server.port);

    type Contender = { start: (ids: number[]) => Promise<Run>; ok: (run: Run) => boolean };
    const contenders: Record<string, Contender> = {
      poolctl: {
        start: () =>
          timed(
            bin,
            [
              'mitigate',
              '--action',
              'kill-idle',
              '--set',
              'kill_idle_after=1s',
              '--yes',
              '--output',
              'json',
              '--mysql',
              server!.rootUrl,
            ],
            { env },
          ),
        ok: (run) => {
          if (run.code !== 0) return false;
          const report = JSON.parse(run.stdout) as {
            actions: { results: { outcome: string }[] }[];
          };
          const done = report.actions[0]!.results.filter((r) => r.outcome === 'terminated');
          return done.length === VICTIMS;
        },
      },
      ...(ptKill && {
        'pt-kill': {
          start: () =>
            timed(
              ptKill,
              [
                '--host',
                server!.host,
                '--port',
                port,
                '--user',
                'root',
                '--password',
                password,
                '--match-command',
                'Sleep',
                '--kill',
                '--victims',
                'all',
                '--run-time',
                '1',
                // Its default --interval is 30 s, and it sleeps that long before it sees that
                // --run-time has passed: 1 s makes its wall time the 1.2 s.
                '--interval',
                '1',
                '--ignore-user',
                'watcher',
              ],
              { env },
            ),
          ok: (run: Run) => run.code === 0,
        },
      }),
      client: {
        start: (ids) =>
          timed(
            client,
            ['--no-defaults', '--batch', '-h', server!.host, '-P', port, '-u', 'root'],
            {
              env: { ...env, MYSQL_PWD: password },
              input: ids.map((id) => `KILL CONNECTION ${id};\n`).join(''),
            },
          ),
        ok: (run) => run.code === 0,
      },
    };

    const names = Object.keys(contenders);
    const results = Object.fromEntries(
      names.map((n) => [n, { reliefMs: [] as number[], wallMs: [] as number[] }]),
    );
    for (let i = 0; i < runs; i++) {
      for (const name of names) {
        const opened = performance.now();
        held = await holdVictims(server.appUrl);
        const openMs = performance.now() - opened;
        await new Promise((r) => setTimeout(r, 1200)); // past kill_idle_after=1s (whole seconds)
        const { start, ok } = contenders[name]!;
        const r = await relief(watcher, held.ids, () => start(held!.ids), ok);
        results[name]!.reliefMs.push(r.reliefMs);
        results[name]!.wallMs.push(r.wallMs);
        console.log(
          `  run ${i + 1} ${name.padEnd(8)} relief ${r.reliefMs.toFixed(0).padStart(5)} ms, ` +
            `wall ${r.wallMs.toFixed(0).padStart(5)} ms  (opened ${VICTIMS} in ${(openMs / 1000).toFixed(1)} s)`,
        );
        await held.close();
        held = undefined;
      }
    }
    const nodeRuns: number[] = [];
    for (let i = 0; i < 7; i++) {
      nodeRuns.push((await timed(process.execPath, ['-e', '0'], { env })).ms);
    }
    const node = median(nodeRuns);

    const f = (ms: number) => `${ms.toFixed(0).padStart(7)} ms`;
    const med = (name: string, key: 'reliefMs' | 'wallMs') => median(results[name]![key]);
    console.log(
      `\nMariaDB ${server.version}, node ${process.version}, ${runs} runs each, medians:`,
    );
    console.log(`  ${''.padEnd(12)}${'relief'.padStart(10)}${'wall'.padStart(10)}`);
    for (const name of names) {
      console.log(`  ${name.padEnd(12)}${f(med(name, 'reliefMs'))}${f(med(name, 'wallMs'))}`);
    }
    console.log(`  ${'node -e 0'.padEnd(12)}${''.padStart(10)}${f(node)}`);

    const poolctlRelief = med('poolctl', 'reliefMs');
    const poolctlWall = med('poolctl', 'wallMs');
    if (ptKill) {
      const pt = med('pt-kill', 'reliefMs');
      const work = poolctlRelief - node;
      console.log(
        `  time to relief: poolctl ${poolctlRelief.toFixed(0)} ms - node ${node.toFixed(0)} ms = ` +
          `${work.toFixed(0)} ms vs pt-kill ${pt.toFixed(0)} ms: ` +
          (work <= pt ? 'within target (met)' : 'OVER TARGET (NOT MET)'),
      );
    }
    const budget = med('client', 'wallMs') + node + SLACK_MS;
    console.log(
      `  wall time: poolctl ${poolctlWall.toFixed(0)} ms vs client batch + node + ${SLACK_MS} ms = ` +
        `${budget.toFixed(0)} ms: ${poolctlWall <= budget ? 'within (met)' : 'OVER (NOT MET)'}`,
    );
  } finally {
    await held?.close();
    await watcher?.end().catch(() => {});
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/kill-mysql: ${(err as Error)?.stack ?? String(err)}`);
  process.exitCode = 1;
});
