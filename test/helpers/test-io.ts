import { PassThrough } from 'node:stream';
import type { IO } from '../../src/io/io.js';

export interface TestIO extends IO {
  stdout(): string;
  stderr(): string;
}

/** An IO with in-memory streams; `tty` pretends all three are terminals. */
export function testIO(
  opts: { tty?: boolean; color?: boolean; neverPrompt?: boolean } = {},
): TestIO {
  const out = new PassThrough();
  const err = new PassThrough();
  const outChunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  out.on('data', (c: Buffer) => outChunks.push(c));
  err.on('data', (c: Buffer) => errChunks.push(c));
  const tty = Boolean(opts.tty);
  const neverPrompt = Boolean(opts.neverPrompt);
  return {
    in: new PassThrough(),
    out,
    err,
    isStdinTTY: tty,
    isStdoutTTY: tty,
    isStderrTTY: false, // no spinner frames in captured output
    color: Boolean(opts.color),
    neverPrompt,
    canPrompt: () => tty && !neverPrompt,
    stdout: () => Buffer.concat(outChunks).toString('utf8'),
    stderr: () => Buffer.concat(errChunks).toString('utf8'),
  };
}
