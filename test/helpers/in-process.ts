import type { Deps } from '../../src/commands/common.js';
import type { Prompter } from '../../src/io/prompter.js';
import { InterruptGate } from '../../src/interrupt.js';
import { httpClient } from '../../src/io/http.js';
import { execaRunner } from '../../src/io/process.js';
import { connectDatabase } from '../../src/targets/connect.js';
import { openTranscript } from '../../src/transcript/writer.js';
import { testIO, type TestIO } from './test-io.js';

/** The real dependencies of a command run in-process: test IO, a given prompter, real servers. */
export function inProcessDeps(
  prompter: Prompter,
  opts: { stateDir?: string; tty?: boolean; argv?: string[] } = {},
): Deps & { io: TestIO } {
  return {
    io: testIO({ tty: opts.tty ?? true }),
    env: opts.stateDir ? { XDG_STATE_HOME: opts.stateDir } : {},
    argv: opts.argv ?? ['poolctl'],
    prompter: () => prompter,
    connect: connectDatabase,
    http: httpClient,
    processes: () => execaRunner,
    interrupts: new InterruptGate(),
    openTranscript,
    onTranscript: () => {},
    now: () => new Date(),
  };
}
