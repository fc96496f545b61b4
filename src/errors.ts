/** Exit codes, as DESIGN.md's contract lists them. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  target: 3,
  unhealthy: 4,
  declined: 5,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A mistake in flags, `--set` values, configuration or a runbook: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly exitCode = ExitCode.usage;
}

/** A target could not be reached or refused us: exit 3. The message names target, reason and fix. */
export class TargetError extends Error {
  override name = 'TargetError';
  readonly exitCode = ExitCode.target;
}

/** A destructive step was declined, or needed `--yes` without a terminal: exit 5. */
export class DeclinedError extends Error {
  override name = 'DeclinedError';
  readonly exitCode = ExitCode.declined;
}

/** The operator interrupted the run (Ctrl-C, or quit at a prompt): exit 130. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  readonly exitCode = ExitCode.interrupted;
  constructor(message = 'interrupted') {
    super(message);
  }
}

/** Maps any thrown value to an exit code; inquirer's prompt errors are matched by class name. */
export function exitCodeOf(err: unknown): number {
  if (err && typeof err === 'object') {
    const e = err as { exitCode?: unknown; name?: unknown };
    if (typeof e.exitCode === 'number') return e.exitCode;
    if (e.name === 'ExitPromptError' || e.name === 'AbortPromptError') return ExitCode.interrupted;
  }
  return ExitCode.internal;
}

/** True for errors that are the user's or the world's, not a bug in poolctl. */
export function isExpected(err: unknown): boolean {
  return exitCodeOf(err) !== ExitCode.internal;
}
