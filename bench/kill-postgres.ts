// Kill benchmark (PostgreSQL): time to relief for 1,000 idle sessions, poolctl against psql.
//
//   npm run build && npx tsx bench/kill-postgres.ts [--runs 3]
//
// Each run opens a fresh set of 1,000 idle sessions (application_name api) on a throwaway
// PostgreSQL, lets them age past 1 s, then starts one contender and measures, from its start,
// the time until the last victim has left pg_stat_activity (a separate connection polls every
// 5 ms) and the contender's own wall time:
//   (a) poolctl mitigate --action kill-idle --set kill_idle_after=1s --yes --output json, the
//       package as users install it (npm pack, installed into a temporary prefix once per run)
//   (b) one psql call with the seed's set-based query:
//       SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND …
//   (c) node -e 0, for Node's start-up
// Issue 13's target: poolctl's time to relief minus Node's start-up is at most psql's time to
// relief, in the same run: the work poolctl does once started is at least as fast. Only prints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startPostgres, type PgServer } from '../test/helpers/postgres-server.js';
import { holdSessions, type HeldSessions } from '../test/helpers/sessions.js';
import { cleanEnv, median, psqlBinary, timed, installedPoolctl, type Run } from './lib.js';

const VICTIMS = 1000;
const PSQL_KILL = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE state = 'idle' AND application_name = 'api' AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND state_change < now() - interval '1 second';`;

const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(flags.runs);

/** Spawns the contender and polls until every victim is gone: [time to relief, wall time]. */
async function relief(
  watcher: pg.Client,
  pids: number[],
  start: () => Promise<Run>,
): Promise<{ reliefMs: number; wallMs: number }> {
  const started = performance.now();
  const running = start();
  let exited: Run | undefined;
  void running.then((run) => (exited = run));
  let reliefMs = Number.NaN;
  for (;;) {
    const { rows } = await watcher.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [pids],
    );
    if (rows[0].n === 0) {
      reliefMs = performance.now() - started;
      break;
    }
    // A contender that has exited and left victims will not remove them later.
    if (exited && exited.code !== 0) throw new Error(`exit ${exited.code}: ${exited.stderr}`);
    if (performance.now() - started > 30_000) throw new Error('victims still there after 30 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  const run = await running;
  if (run.code !== 0) throw new Error(`exit ${run.code}: ${run.stderr}`);
  return { reliefMs, wallMs: run.ms };
}

async function main(): Promise<void> {
  const { bin } = installedPoolctl('kill-postgres');
  const home = mkdtempSync(path.join(tmpdir(), 'poolctl-bench-'));
  let server: PgServer | undefined;
  let held: HeldSessions | undefined;
  const watcher = { client: undefined as pg.Client | undefined };
  try {
    console.log(
      `starting PostgreSQL (max_connections 1100); ${runs} runs of ${VICTIMS} victims each`,
    );
    server = await startPostgres({ maxConnections: 1100 });
    const env = cleanEnv(home);
    watcher.client = new pg.Client({
      connectionString: server.superuserUrl,
      application_name: 'bench-watch',
    });
    await watcher.client.connect();
    const psqlBin = psqlBinary();
    const contenders: Record<string, () => Promise<Run>> = {
      poolctl: () =>
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
            '--pg',
            server!.superuserUrl,
          ],
          { env },
        ),
      psql: () =>
        timed(psqlBin, ['-X', '-q', '-A', '-d', server!.superuserUrl, '-c', PSQL_KILL], { env }),
    };
    const results: Record<string, { reliefMs: number[]; wallMs: number[] }> = {
      poolctl: { reliefMs: [], wallMs: [] },
      psql: { reliefMs: [], wallMs: [] },
    };
    for (let i = 0; i < runs; i++) {
      for (const name of ['poolctl', 'psql']) {
        held = await holdSessions(server.appUrl, { idle: VICTIMS, appNames: ['api'] });
        await new Promise((r) => setTimeout(r, 1200));
        const r = await relief(watcher.client, held.pids, contenders[name]!);
        results[name]!.reliefMs.push(r.reliefMs);
        results[name]!.wallMs.push(r.wallMs);
        await held.close();
        held = undefined;
      }
    }
    const nodeRuns: number[] = [];
    for (let i = 0; i < 7; i++)
      nodeRuns.push((await timed(process.execPath, ['-e', '0'], { env })).ms);
    const node = median(nodeRuns);
    const f = (ms: number) => `${ms.toFixed(0).padStart(6)} ms`;
    console.log(`\nnode ${process.version}, ${runs} runs each, medians:`);
    console.log(`  ${''.padEnd(10)}${'relief'.padStart(9)}${'wall'.padStart(9)}`);
    for (const name of ['poolctl', 'psql']) {
      console.log(
        `  ${name.padEnd(10)}${f(median(results[name]!.reliefMs))}${f(median(results[name]!.wallMs))}`,
      );
    }
    console.log(`  ${'node -e 0'.padEnd(10)}${''.padStart(9)}${f(node)}`);
    const p = median(results.poolctl!.reliefMs);
    const q = median(results.psql!.reliefMs);
    console.log(
      `  poolctl relief - node start-up = ${(p - node).toFixed(0)} ms vs psql relief ${q.toFixed(0)} ms: ` +
        (p - node <= q ? 'within target' : 'OVER TARGET') +
        ` (ratio poolctl / (psql + node) ${(p / (q + node)).toFixed(2)}x)`,
    );
  } finally {
    await held?.close();
    await watcher.client?.end().catch(() => {});
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/kill-postgres: ${(err as Error)?.stack ?? String(err)}`);
  process.exitCode = 1;
});
