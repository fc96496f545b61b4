// Shared by the benchmarks: timing a child process, medians, a clean environment, the psql binary.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** What users run (package.json "bin"): the launcher, which picks the fast start-up (bin/poolctl). */
export const bin = path.join(root, 'bin', 'poolctl');

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
