import type { Readable, Writable } from 'node:stream';

/**
 * The one object through which poolctl meets the terminal. Nothing else reads
 * `process.stdout.isTTY`: commands and renderers ask this object, and tests build one with buffers.
 */
export interface IO {
  in: Readable;
  out: Writable;
  err: Writable;
  isStdinTTY: boolean;
  isStdoutTTY: boolean;
  isStderrTTY: boolean;
  /** Colour: stdout is a TTY, and neither `--no-color` nor `NO_COLOR`. */
  color: boolean;
  /** `--non-interactive`, `CI=true`: never prompt, whatever the streams are. */
  neverPrompt: boolean;
  /** Prompts are possible: stdin and stdout are terminals and nothing forbids prompting. */
  canPrompt(): boolean;
}

export interface SystemIOOptions {
  nonInteractive?: boolean;
  noColor?: boolean;
  env: NodeJS.ProcessEnv;
}

function isTruthyEnv(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

export function systemIO(opts: SystemIOOptions): IO {
  const isStdinTTY = Boolean(process.stdin.isTTY);
  const isStdoutTTY = Boolean(process.stdout.isTTY);
  const isStderrTTY = Boolean(process.stderr.isTTY);
  const neverPrompt = Boolean(opts.nonInteractive) || isTruthyEnv(opts.env.CI);
  // NO_COLOR: any non-empty value disables colour (no-color.org); chalk itself ignores it.
  const color =
    !opts.noColor && !(opts.env.NO_COLOR !== undefined && opts.env.NO_COLOR !== '') && isStdoutTTY;
  return {
    in: process.stdin,
    out: process.stdout,
    err: process.stderr,
    isStdinTTY,
    isStdoutTTY,
    isStderrTTY,
    color,
    neverPrompt,
    canPrompt: () => isStdinTTY && isStdoutTTY && !neverPrompt,
  };
}
