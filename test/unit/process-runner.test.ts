import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execaRunner, KILL_GRACE_MS, ProcessError, recordingRunner } from '../../src/io/process.js';

// The process seam against real programs: node itself (its absolute path, so PATH plays no part)
// and sh. A "hung" program writes its pid and those of its children to a file, so the test can
// check that each of them is gone after the timeout, not only that the call returned.

const dir = mkdtempSync(path.join(tmpdir(), 'poolctl-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const node = process.execPath;

/** Running, or stopped; a zombie (dead, not yet reaped by its new parent) counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The pids a script wrote to `file`, one per line. */
function pidsIn(file: string): number[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

async function failure(promise: Promise<unknown>): Promise<ProcessError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProcessError);
  return error as ProcessError;
}

describe('execaRunner', () => {
  it('returns a non-zero exit as a result with both outputs, as written', async () => {
    const result = await execaRunner.run('sh', ['-c', 'echo out; echo err >&2; exit 3'], {
      timeoutMs: 10_000,
    });
    expect(result).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('passes each argument as it is, with no shell to expand it', async () => {
    const marker = path.join(dir, 'expanded');
    const hostile = [
      `$(touch ${marker})`,
      `; touch ${marker}`,
      `\`touch ${marker}\``,
      '*',
      '$HOME',
    ];
    const result = await execaRunner.run(
      node,
      ['-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', ...hostile],
      { timeoutMs: 10_000 },
    );
    expect(JSON.parse(result.stdout)).toEqual(hostile);
    expect(existsSync(marker)).toBe(false);
  });

  it('writes `input` to stdin and adds `env` to the environment', async () => {
    const result = await execaRunner.run(
      node,
      [
        '-e',
        'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s,process.env.POOLCTL_X,!!process.env.PATH))',
      ],
      { timeoutMs: 10_000, input: 'from stdin', env: { POOLCTL_X: 'added' } },
    );
    expect(result.stdout).toBe('from stdin added true\n');
  });

  it('a binary that does not exist: ProcessError "missing"', async () => {
    const error = await failure(
      execaRunner.run('poolctl-no-such-binary', ['x'], { timeoutMs: 10_000 }),
    );
    expect(error.reason).toBe('missing');
    expect(error.message).toBe('poolctl-no-such-binary: not found');
  });

  it('a file that cannot be executed: ProcessError "failed-to-start"', async () => {
    const file = path.join(dir, 'not-executable');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    const error = await failure(execaRunner.run(file, [], { timeoutMs: 10_000 }));
    expect(error.reason).toBe('failed-to-start');
    expect(error.message).toBe(`${file}: cannot be started (permission denied)`);
  });

  it('a timeout kills the program, and returns when it is gone', async () => {
    const pids = path.join(dir, 'hung.pids');
    const started = Date.now();
    const error = await failure(
      execaRunner.run(
        node,
        [
          '-e',
          `require('fs').writeFileSync(${JSON.stringify(pids)}, process.pid + '\\n'); setInterval(() => {}, 1000)`,
        ],
        { timeoutMs: 800 },
      ),
    );
    const took = Date.now() - started;
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe(`${node} timed out after 800ms`);
    // Node's timers count from the event loop's cached clock, which a busy machine leaves
    // behind: a timer may seem to fire up to a few hundred ms early by the wall clock.
    expect(took).toBeGreaterThanOrEqual(800 - 300);
    // Within the grace period: SIGTERM was enough (slack for a loaded machine, far below the
    // hang it would otherwise be).
    expect(took).toBeLessThan(800 + KILL_GRACE_MS + 2_000);
    for (const pid of pidsIn(pids)) expect(alive(pid), `pid ${pid}`).toBe(false);
  });

  it('a program that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const pids = path.join(dir, 'stubborn.pids');
    const started = Date.now();
    const error = await failure(
      execaRunner.run(
        node,
        [
          '-e',
          `process.on('SIGTERM', () => {}); require('fs').writeFileSync(${JSON.stringify(pids)}, process.pid + '\\n'); setInterval(() => {}, 1000)`,
        ],
        { timeoutMs: 800 },
      ),
    );
    const took = Date.now() - started;
    expect(error.reason).toBe('timeout');
    expect(took).toBeGreaterThanOrEqual(800 + KILL_GRACE_MS - 300); // SIGTERM alone: ~800
    expect(took).toBeLessThan(800 + KILL_GRACE_MS + 3_000);
    for (const pid of pidsIn(pids)) expect(alive(pid), `pid ${pid}`).toBe(false);
  });

  it('a hung child of the program (a kubectl credential plugin) is killed too, and cannot hold the call', async () => {
    // sh starts a child that keeps sh's stdout open: killing sh alone would leave the call
    // waiting for that pipe to close, 30 s later.
    const pids = path.join(dir, 'family.pids');
    const started = Date.now();
    const error = await failure(
      execaRunner.run('sh', ['-c', `sleep 30 & echo $! >> ${pids}; echo $$ >> ${pids}; wait`], {
        timeoutMs: 800,
      }),
    );
    const took = Date.now() - started;
    expect(error.reason).toBe('timeout');
    expect(took).toBeLessThan(800 + KILL_GRACE_MS + 3_000); // not 30 s
    const family = pidsIn(pids);
    expect(family).toHaveLength(2);
    for (const pid of family) expect(alive(pid), `pid ${pid}`).toBe(false);
  });

  it('an abort stops the program at once: ProcessError "aborted"', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const error = await failure(
      execaRunner.run('sleep', ['30'], { timeoutMs: 10_000, signal: controller.signal }),
    );
    expect(error.reason).toBe('aborted');
    expect(Date.now() - started).toBeLessThan(5_000); // not 30 s
    // Already aborted: nothing is started.
    const again = await failure(
      execaRunner.run('poolctl-no-such-binary', [], {
        timeoutMs: 10_000,
        signal: controller.signal,
      }),
    );
    expect(again.reason).toBe('aborted');
  });

  it('a program killed by a signal poolctl did not send: exit code 128 + N', async () => {
    const result = await execaRunner.run('sh', ['-c', 'kill -9 $$'], { timeoutMs: 10_000 });
    expect(result.exitCode).toBe(137);
  });
});

describe('recordingRunner', () => {
  it('records every call, file and argument array, and passes the answer through', async () => {
    const calls: { file: string; args: string[] }[] = [];
    const runner = recordingRunner(execaRunner, calls);
    const args = ['-c', 'echo "$1"', 'sh', 'a b'];
    const result = await runner.run('sh', args, { timeoutMs: 10_000 });
    args.push('changed later');
    await runner
      .run('poolctl-no-such-binary', ['--x'], { timeoutMs: 10_000 })
      .catch(() => undefined);
    expect(result.stdout).toBe('a b\n');
    expect(calls).toEqual([
      { file: 'sh', args: ['-c', 'echo "$1"', 'sh', 'a b'] },
      { file: 'poolctl-no-such-binary', args: ['--x'] },
    ]);
  });
});
