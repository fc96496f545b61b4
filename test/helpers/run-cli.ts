import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CliResult {
  /** Exit code; 128 + signal number when the process was killed by a signal. */
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** The fresh HOME and XDG_STATE_HOME of the run (transcripts land under it). */
  stateDir: string;
}

export interface RunCliOptions {
  /** Added to the clean environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed; without it stdin is closed at once. */
  input?: string;
  /** Default 30 s; on timeout the process is killed and runCli rejects. */
  timeoutMs?: number;
  /** Another poolctl to run, e.g. an installed package's bin; default the checkout's. */
  bin?: string;
  /** Default the repository. */
  cwd?: string;
  /** Told the whole stderr so far on every chunk: lets a test act when the run reaches a point. */
  onStderr?: (stderrSoFar: string) => void;
}

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** The package's bin (npm links it as `poolctl`): `#!/usr/bin/env node`, the `node` first on PATH. */
export const poolctlBin = path.join(repoRoot, 'bin', 'poolctl.js');

/**
 * The parent's connection settings must not leak into a run: they would point poolctl at a real
 * database. FORCE_COLOR would override NO_COLOR in the colour libraries.
 */
const SCRUBBED =
  /^(PG|MYSQL)|^(DATABASE_URL|PROMETHEUS_URL|PROMETHEUS_TOKEN|KUBECONFIG|FORCE_COLOR)$/;

let scratchRoot: string | undefined;

/**
 * PATH with the directory of the node running the tests first: bin/poolctl.js runs the `node` it
 * finds on PATH, and must find this one.
 */
export function pathWithThisNode(rest = process.env.PATH): string {
  return [path.dirname(process.execPath), rest].filter(Boolean).join(path.delimiter);
}

/** The environment of a run: the parent's, scrubbed, with a fresh HOME and state directory. */
function cliEnv(opts: Pick<RunCliOptions, 'env'>): { env: NodeJS.ProcessEnv; stateDir: string } {
  const stateDir = fs.mkdtempSync(path.join(scratch(), 'state-'));
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!SCRUBBED.test(key)) env[key] = value;
  }
  // A fresh HOME too, so the real ~/.pgpass and ~/.kube/config are never read.
  Object.assign(env, { CI: 'true', NO_COLOR: '1', HOME: stateDir, XDG_STATE_HOME: stateDir });
  env.PATH = pathWithThisNode(env.PATH);
  for (const [key, value] of Object.entries(opts.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return { env, stateDir };
}

/** An exit as a shell reports it: a death by signal is 128 + the signal's number. */
function shellCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return signal ? 128 + (os.constants.signals[signal] ?? 0) : 1;
}

/** A run of the built CLI left running, for a test that signals it or acts on it midway. */
export interface StartedCli {
  child: ChildProcessWithoutNullStreams;
  /** Its exit code, as a shell reports it. */
  exited: Promise<number>;
  stderr(): string;
}

/** Starts the built CLI through its bin, as `runCli` runs it, without waiting for it. */
export function startCli(args: string[], opts: Pick<RunCliOptions, 'env'> = {}): StartedCli {
  const { env } = cliEnv(opts);
  const child = spawn(poolctlBin, args, { cwd: repoRoot, env, stdio: 'pipe' });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.resume();
  const exited = new Promise<number>((resolve) =>
    child.once('close', (code, signal) => resolve(shellCode(code, signal))),
  );
  return { child, exited, stderr: () => stderr };
}

/** Runs the built CLI through its bin, as a non-interactive CI job would. */
export async function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const { env, stateDir } = cliEnv(opts);

  const timeoutMs = opts.timeoutMs ?? 30_000;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(opts.bin ?? poolctlBin, args, {
      cwd: opts.cwd ?? repoRoot,
      env,
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      opts.onStderr?.(stderr);
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');

    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `poolctl ${args.join(' ')} did not finish within ${timeoutMs} ms\n` +
            `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: shellCode(code, signal),
        stdout,
        stderr,
        durationMs: performance.now() - started,
        stateDir,
      });
    });
  });
}

/**
 * One scratch directory per test process. Vitest ends its workers with SIGTERM, where 'exit' does
 * not fire, so directories of processes that are gone are also removed on the next first use.
 */
function scratch(): string {
  if (scratchRoot) return scratchRoot;
  const prefix = 'poolctl-cli-';
  for (const name of fs.readdirSync(os.tmpdir())) {
    const owner = Number(name.startsWith(prefix) ? name.slice(prefix.length).split('-')[0] : NaN);
    if (owner > 0 && !isAlive(owner)) {
      fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    }
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}${process.pid}-`));
  process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  return (scratchRoot = root);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
