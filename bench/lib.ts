// Shared by the benchmarks: poolctl as users install it, timing a child process, medians, a clean
// environment, the psql binary.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packAndInstall } from '../test/helpers/installed-package.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The checkout's bin (package.json "bin"), run as `node bin/poolctl.js` would be. */
export const checkoutBin = path.join(root, 'bin', 'poolctl.js');

/**
 * poolctl as users run it: the last build packed (`npm pack`) and installed with `npm install -g
 * --prefix` into a temporary directory, once per bench run; `bin` is the `poolctl` npm linked
 * there. Removed when the process exits.
 */
export function installedPoolctl(name: string): { bin: string; dir: string } {
  if (!existsSync(path.join(root, 'dist', 'cli.js'))) {
    console.error(`bench/${name}: dist/cli.js is missing: run \`npm run build\` first`);
    process.exit(1);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'poolctl-bench-package-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const installed = packAndInstall(dir);
  console.log(`installed ${path.basename(installed.tarball)} into ${dir}/prefix`);
  return { bin: installed.bin, dir };
}

/**
 * The psql binary itself, as the rig finds its server binaries: the newest Debian-packaged one,
 * else `psql` on PATH. Debian's /usr/bin/psql is pg_wrapper, a Perl script that picks a version
 * and costs ~15 ms before psql starts: that is Perl's start-up, not psql's work.
 */
export function psqlBinary(): string {
  const root = '/usr/lib/postgresql';
  const versions = (existsSync(root) ? readdirSync(root) : [])
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(root, v, 'bin', 'psql');
    if (existsSync(bin)) return bin;
  }
  return 'psql';
}

export interface Run {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Wall time from spawn to exit; stdout is read (as a real consumer would) and kept. */
export function timed(
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; input?: string },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: root, env: opts.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout, stderr });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The parent's PG* and DATABASE_URL must not steer either client; HOME keeps ~/.pgpass out. */
export function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(PG|MYSQL)|^(DATABASE_URL|FORCE_COLOR)$/.test(key)) env[key] = value;
  }
  return { ...env, CI: 'true', NO_COLOR: '1', HOME: home, XDG_STATE_HOME: home };
}
