import { expect } from 'vitest';
import { readTranscript } from '../../src/transcript/writer.js';
import type { CliResult } from './run-cli.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** Every failure is one line on stderr, nothing on stdout, no stack trace. */
export function expectOneLine(result: CliResult, code: number, ...fragments: string[]) {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^poolctl: /);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  for (const f of fragments) expect(result.stderr).toContain(f);
}

/**
 * A transcript's events through poolctl's own reader (which fails on a damaged line), loosely
 * typed so that tests can reach into them.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions reach into events
export type LooseEvent = { type: string; [key: string]: any };

export function readEvents(path: string): LooseEvent[] {
  return readTranscript(path) as LooseEvent[];
}
