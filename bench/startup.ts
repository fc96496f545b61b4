// Start-up benchmark: what `poolctl --help` adds to a bare Node start.
//
//   npm run build && npx tsx bench/startup.ts [--runs 21]
//
// Runs `node -e 0` and `node bin/poolctl.js --help` alternately, N times each, in the same
// environment (NODE_EXTRA_CA_CERTS and all: DESIGN.md "Facts worth knowing"), and prints both
// medians, their difference and ratio, and whether the difference is within the 40 ms budget of
// issue 6. It only prints: exit 0 unless a run fails.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const BUDGET_MS = 40;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'poolctl.js');

const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`bench/startup: --runs ${values.runs}: expected a whole number above 0`);
  process.exit(2);
}
if (!existsSync(path.join(root, 'dist', 'cli.js'))) {
  console.error('bench/startup: dist/cli.js is missing: run `npm run build` first');
  process.exit(1);
}

/** Wall time of one run in ms, from spawn to exit; throws when it does not exit 0. */
function time(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const bare: number[] = [];
const help: number[] = [];
// One warm-up of each (disk cache), then alternate so drift hits both alike.
time(['-e', '0']);
time([bin, '--help']);
for (let i = 0; i < runs; i++) {
  bare.push(time(['-e', '0']));
  help.push(time([bin, '--help']));
}

const b = median(bare);
const h = median(help);
const diff = h - b;
const f = (ms: number) => `${ms.toFixed(1).padStart(6)} ms`;
console.log(`node ${process.version}, ${runs} runs each, medians:`);
console.log(`  node -e 0                    ${f(b)}`);
console.log(`  node bin/poolctl.js --help   ${f(h)}`);
console.log(`  difference                   ${f(diff)} (budget ${BUDGET_MS} ms)`);
console.log(`  ratio                        ${(h / b).toFixed(2).padStart(6)}x`);
console.log(
  diff < BUDGET_MS
    ? `within budget: --help adds ${diff.toFixed(1)} ms < ${BUDGET_MS} ms`
    : `OVER BUDGET: --help adds ${diff.toFixed(1)} ms >= ${BUDGET_MS} ms`,
);
