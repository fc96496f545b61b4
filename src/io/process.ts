// The process seam: how poolctl runs another program (kubectl). Injected like the Prompter, so a
// target adapter is tested against a stand-in binary and a preview can record the calls it would
// make. Argument arrays only, never a shell: a value such as `$(touch x)` reaches the program as
// those very characters.
import { constants } from 'node:os';
import { formatDuration } from '../runbook/params.js';

export interface ProcessResult {
  /** The program's exit code; 128 + N when a signal N that poolctl did not send ended it. */
  exitCode: number;
  /** Everything the program wrote, as written (UTF-8, the final newline kept). */
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The whole call, start to exit; then SIGTERM, and SIGKILL if it is still there. */
  timeoutMs: number;
  /** Aborting kills the program the same way and throws ProcessError('aborted'). */
  signal?: AbortSignal;
  /** Added to poolctl's own environment (KUBECONFIG and PATH pass through untouched). */
  env?: NodeJS.ProcessEnv;
  /** Written to the program's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
}

export interface ProcessRunner {
  /** Resolves for any exit, zero or not; throws ProcessError only when no exit code is to be had. */
  run(file: string, args: string[], opts: RunOptions): Promise<ProcessResult>;
}

export type ProcessErrorReason = 'missing' | 'timeout' | 'aborted' | 'failed-to-start';

/** Thrown for a binary that cannot be started (ENOENT/EACCES) or a call that timed out / was aborted. */
export class ProcessError extends Error {
  override name = 'ProcessError';
  constructor(
    readonly reason: ProcessErrorReason,
    message: string,
    /** What the program had written before it was stopped (for a timeout: where it hung). */
    readonly partial: { stdout: string; stderr: string } = { stdout: '', stderr: '' },
  ) {
    super(message);
  }
}

/**
 * How long a program that ignores SIGTERM gets before SIGKILL. A timed-out call therefore returns
 * within timeoutMs + this, whatever the program does.
 */
export const KILL_GRACE_MS = 1_500;

/**
 * The real runner, over execa (loaded on the first call: `poolctl --help` and a database-only
 * diagnose never load it). `reject: false`, so a non-zero exit is a result, not a throw.
 *
 * The program runs in a process group of its own, and a timeout or an abort signals the whole
 * group: kubectl's credential plugins (`aws eks get-token`, gke-gcloud-auth-plugin) are children
 * of kubectl that hold its output pipes, and a hung plugin would otherwise keep the call waiting
 * after kubectl itself was killed (measured: `sh -c 'sleep 30 & sleep 30'` with a 1 s timeout
 * took 30 s when only the direct child was killed). The group also keeps a terminal's Ctrl-C
 * away from the program: poolctl decides, and stops it through `signal`.
 */
export const execaRunner: ProcessRunner = {
  async run(file, args, opts) {
    if (opts.signal?.aborted) throw new ProcessError('aborted', `${file} was interrupted`);
    const { execa } = await import('execa');
    const subprocess = execa(file, args, {
      reject: false,
      shell: false,
      detached: true,
      env: opts.env,
      extendEnv: true,
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
      stripFinalNewline: false,
      encoding: 'utf8',
    });

    let stoppedFor: 'timeout' | 'aborted' | undefined;
    let forceKill: NodeJS.Timeout | undefined;
    const stop = (why: 'timeout' | 'aborted'): void => {
      if (stoppedFor) return;
      stoppedFor = why;
      signalGroup(subprocess.pid, 'SIGTERM');
      forceKill = setTimeout(() => signalGroup(subprocess.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => stop('timeout'), opts.timeoutMs);
    const onAbort = (): void => stop('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const result = await subprocess.finally(() => {
      clearTimeout(timer);
      clearTimeout(forceKill);
      opts.signal?.removeEventListener('abort', onAbort);
    });

    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    if (stoppedFor === 'timeout') {
      const after = formatDuration(opts.timeoutMs / 1000);
      throw new ProcessError('timeout', `${file} timed out after ${after}`, { stdout, stderr });
    }
    if (stoppedFor === 'aborted') {
      throw new ProcessError('aborted', `${file} was interrupted`, { stdout, stderr });
    }
    if (result.code === 'ENOENT') throw new ProcessError('missing', `${file}: not found`);
    if (result.exitCode === undefined && result.signal === undefined) {
      // Spawning failed (EACCES: not executable, a directory, ENOEXEC…).
      const why = result.code === 'EACCES' ? 'permission denied' : (result.code ?? 'unknown error');
      throw new ProcessError('failed-to-start', `${file}: cannot be started (${why})`);
    }
    const signalNumber = constants.signals[result.signal as keyof typeof constants.signals] ?? 0;
    return { exitCode: result.exitCode ?? 128 + signalNumber, stdout, stderr };
  },
};

/** Signals every process of the group the program leads; a group already gone is fine. */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: everyone in it has exited.
  }
}

/** A runner that records every call (file, args) — for tests and for `--dry-run` previews if useful. */
export function recordingRunner(
  inner: ProcessRunner,
  calls: { file: string; args: string[] }[],
): ProcessRunner {
  return {
    run(file, args, opts) {
      calls.push({ file, args: [...args] });
      return inner.run(file, args, opts);
    },
  };
}
