// Diagnose benchmark: `poolctl diagnose` of 1,000 connections against psql running the same SQL.
//
//   npm run build && npx tsx bench/diagnose-1000.ts [--runs 7] [--psql /usr/bin/psql] [--baseline DIR]
//
// Starts a throwaway PostgreSQL (max_connections 1100) with test/helpers' rig, holds 1,000
// sessions (700 idle, 200 idle in transaction, 100 in pg_sleep) under the application names api,
// worker and batch, lets them age past 1 s, then runs alternately, N times each:
//   (a) poolctl diagnose --output json --pg <superuser url> --set …=1s (×3), the package as users
//       install it (npm pack, installed into a temporary prefix once per bench run)
//   (a') the same with the checkout's bin/poolctl.js, side by side with (a)
//   (b) one `psql -X -q -A` (the binary, not Debian's Perl wrapper) running the SQL of the same
//       runbook's diagnose steps, read from dist/runbooks.json with the bound parameters
//       substituted as literals
//   (c) node -e 0
//   (d) with --baseline DIR: another built checkout's bin/poolctl.js (say, the commit before a
//       change), so that before and after are measured in the same run, under the same load
// and prints the medians and poolctl / (psql + node start-up); the target is ≤ 1.5. It only
// prints: exit 0 unless a run fails. The server is stopped at the end, and by the rig's signal
// handlers on Ctrl-C.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bindParameters, parseSetFlags, resolveParameters } from '../src/runbook/params.js';
import type { Runbook } from '../src/runbook/types.js';
import { startPostgres, type PgServer } from '../test/helpers/postgres-server.js';
import { holdSessions, type HeldSessions } from '../test/helpers/sessions.js';
import {
  checkoutBin,
  cleanEnv,
  installedPoolctl,
  median,
  psqlBinary,
  root,
  timed,
  type Run,
} from './lib.js';

const TARGET_RATIO = 1.5;
const SESSIONS = { idle: 700, idleInTx: 200, long: 100 };
const SETS = ['long_query_after=1s', 'leak_idle_after=1s', 'idle_in_tx_after=1s'];
const RUNBOOK = 'postgres/pool-exhausted';

const compiled = path.join(root, 'dist', 'runbooks.json');

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    psql: { type: 'string' },
    baseline: { type: 'string' },
  },
});
const runs = Number(flags.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`bench/diagnose-1000: --runs ${flags.runs}: expected a whole number above 0`);
  process.exit(2);
}
const baselineBin = flags.baseline && path.resolve(flags.baseline, 'bin', 'poolctl.js');
if (baselineBin && !existsSync(path.resolve(flags.baseline!, 'dist', 'cli.js'))) {
  console.error(
    `bench/diagnose-1000: --baseline ${flags.baseline}: no dist/cli.js there: build it first`,
  );
  process.exit(2);
}
if (!existsSync(compiled) || !existsSync(path.join(root, 'dist', 'cli.js'))) {
  console.error('bench/diagnose-1000: dist/ is incomplete: run `npm run build` first');
  process.exit(1);
}

/** The diagnose steps' SQL as one psql script, parameters inlined exactly as poolctl binds them. */
function psqlScript(): { script: string; steps: string[] } {
  const { runbooks } = JSON.parse(readFileSync(compiled, 'utf8')) as { runbooks: Runbook[] };
  const runbook = runbooks.find((r) => r.id === RUNBOOK);
  if (!runbook) throw new Error(`${compiled} has no runbook ${RUNBOOK}`);
  const values = resolveParameters(
    runbook.parameters,
    parseSetFlags(SETS, runbook.parameters, runbook.id),
    runbook.id,
  );
  const parts: string[] = [];
  const steps: string[] = [];
  for (const step of runbook.diagnose) {
    if (step.kind !== 'query') continue;
    const bound = bindParameters(step.params, values);
    const sql = step.sql.replace(/\$(\d+)\b/g, (match, n: string) => {
      const value = bound[Number(n) - 1];
      if (value === undefined) throw new Error(`step ${step.id}: no value for ${match}`);
      return typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;
    });
    parts.push(`${sql.trimEnd().replace(/;$/, '')};`);
    steps.push(step.id);
  }
  return { script: `${parts.join('\n')}\n`, steps };
}

async function main(): Promise<void> {
  const { script, steps } = psqlScript();
  const { bin } = installedPoolctl('diagnose-1000');
  const home = mkdtempSync(path.join(tmpdir(), 'poolctl-bench-'));
  let server: PgServer | undefined;
  let held: HeldSessions | undefined;
  try {
    console.log('starting PostgreSQL (max_connections 1100) and opening 1,000 sessions …');
    server = await startPostgres({ maxConnections: 1100 });
    const opened = performance.now();
    held = await holdSessions(server.appUrl, SESSIONS);
    console.log(
      `  ${held.pids.length} sessions (${SESSIONS.idle} idle, ${SESSIONS.idleInTx} idle in transaction, ` +
        `${SESSIONS.long} pg_sleep) in ${((performance.now() - opened) / 1000).toFixed(1)} s`,
    );
    await new Promise((r) => setTimeout(r, 1500)); // past every 1s threshold

    const env = cleanEnv(home);
    const diagnose = (poolctlBin: string) => (): Promise<Run> =>
      timed(
        poolctlBin,
        [
          'diagnose',
          '--output',
          'json',
          '--pg',
          server!.superuserUrl,
          ...SETS.flatMap((s) => ['--set', s]),
        ],
        { env },
      );
    const poolctl = diagnose(bin);
    const checkout = diagnose(checkoutBin);
    const baseline = baselineBin ? diagnose(baselineBin) : undefined;
    // --psql /usr/bin/psql measures against Debian's wrapper, the `psql` on PATH.
    const psqlBin = flags.psql ?? psqlBinary();
    const psql = (): Promise<Run> =>
      timed(
        psqlBin,
        ['-X', '-q', '-A', '-P', 'footer=on', '-v', 'ON_ERROR_STOP=1', '-d', server!.superuserUrl],
        { env, input: script },
      );
    const bare = (): Promise<Run> => timed(process.execPath, ['-e', '0'], { env });

    // One checked run of each first: both must work and see the same sessions.
    const check = await poolctl();
    if (check.code !== 0 && check.code !== 4) {
      throw new Error(`poolctl exited ${check.code}: ${check.stderr}`);
    }
    const report = JSON.parse(check.stdout) as {
      status: string;
      steps: { id: string; status: string; durationMs: number; rows?: unknown[] }[];
    };
    const failed = report.steps.filter((s) => s.status === 'failed');
    if (failed.length) throw new Error(`poolctl steps failed: ${failed.map((s) => s.id)}`);
    const checkPsql = await psql();
    if (checkPsql.code !== 0) throw new Error(`psql exited ${checkPsql.code}: ${checkPsql.stderr}`);
    const poolctlRows = report.steps.filter((s) => s.rows).map((s) => s.rows!.length);
    const psqlRows = [...checkPsql.stdout.matchAll(/^\((\d+) rows?\)$/gm)].map((m) => Number(m[1]));
    console.log(
      `  poolctl: status ${report.status}; rows and query time per step: ` +
        report.steps
          .filter((s) => s.rows)
          .map((s) => `${s.id} ${s.rows!.length} (${s.durationMs} ms)`)
          .join(', '),
    );
    console.log(
      `  ${psqlBin} runs the same ${steps.length} statements; rows: ${psqlRows.join(', ')}`,
    );
    if (psqlRows.join() !== poolctlRows.join()) {
      console.log(`  note: row counts differ from poolctl's (${poolctlRows.join(', ')})`);
    }
    await bare();
    await checkout();
    if (baseline) {
      const b = await baseline();
      if (b.code !== 0 && b.code !== 4) throw new Error(`baseline exited ${b.code}: ${b.stderr}`);
    }

    const times = {
      poolctl: [] as number[],
      checkout: [] as number[],
      psql: [] as number[],
      node: [] as number[],
      baseline: [] as number[],
    };
    for (let i = 0; i < runs; i++) {
      const contenders = [
        ['poolctl', poolctl],
        ['checkout', checkout],
        ['psql', psql],
        ['node', bare],
        ...(baseline ? [['baseline', baseline] as const] : []),
      ] as const;
      for (const [name, run] of contenders) {
        const r = await run();
        const isPoolctl = name === 'poolctl' || name === 'checkout' || name === 'baseline';
        if (r.code !== 0 && !(isPoolctl && r.code === 4)) {
          throw new Error(`${name} exited ${r.code}: ${r.stderr}`);
        }
        times[name].push(r.ms);
      }
    }

    const p = median(times.poolctl);
    const c = median(times.checkout);
    const q = median(times.psql);
    const n = median(times.node);
    const ratio = p / (q + n);
    const f = (ms: number) => `${ms.toFixed(1).padStart(7)} ms`;
    console.log(`\nnode ${process.version}, ${runs} runs each, medians:`);
    const lines: [string, string][] = [
      ['(a) poolctl diagnose --output json', f(p)],
      ["(a') the same, checkout's bin/poolctl.js", f(c)],
      [`(b) psql, the same ${steps.length} queries`, f(q)],
      ['(c) node -e 0', f(n)],
      ...(baseline
        ? ([
            [`(d) --baseline ${flags.baseline}`, f(median(times.baseline))],
            [
              'ratio baseline / (psql + node)',
              `${(median(times.baseline) / (q + n)).toFixed(2).padStart(7)}x`,
            ],
          ] as [string, string][])
        : []),
      ['poolctl - (psql + node)', f(p - q - n)],
      [
        'ratio poolctl / (psql + node)',
        `${ratio.toFixed(2).padStart(7)}x (target <= ${TARGET_RATIO})`,
      ],
    ];
    for (const [label, value] of lines) console.log(`  ${label.padEnd(44)}${value}`);
    console.log(
      ratio <= TARGET_RATIO
        ? `within target: ${ratio.toFixed(2)} <= ${TARGET_RATIO}`
        : `OVER TARGET: ${ratio.toFixed(2)} > ${TARGET_RATIO}`,
    );
  } finally {
    await held?.close();
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/diagnose-1000: ${(err as Error)?.stack ?? String(err)}`);
  process.exitCode = 1;
});
