import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { expectOneLine, readEvents } from '../helpers/expect.js';

// Fault suite: transcript paths that cannot exist, and two runs writing one incident at once.

describe('a transcript path that cannot exist', () => {
  // Never reached: the transcript is opened before any connection.
  const pg = ['--pg', 'postgres://oncall@127.0.0.1:1/app'];
  const scratch = fs.mkdtempSync(join(tmpdir(), 'poolctl-paths-'));
  const file = join(scratch, 'a-file');
  fs.writeFileSync(file, 'x');
  const fifo = join(scratch, 'fifo.jsonl');
  execFileSync('mkfifo', [fifo]);

  // Node's recursive mkdir spun at 100% CPU on /proc, deaf to Ctrl-C: each must end at once.
  it.each([
    ['--transcript under /proc', ['--transcript', '/proc/x/y.jsonl'], {}, 'ENOENT'],
    ['XDG_STATE_HOME under /proc', [], { XDG_STATE_HOME: '/proc/poolctl-state' }, 'ENOENT'],
    ['a parent that is a file', ['--transcript', join(file, 'inc.jsonl')], {}, 'ENOTDIR'],
    ['a FIFO, whose writes would block', ['--transcript', fifo], {}, 'not a regular file'],
  ])('%s: exit 2 at once, one line', async (_name, args, env, reason) => {
    // The spin never ended: runCli kills it at the timeout and rejects. (No bound tighter than
    // that on the time: on a busy two-core machine a start alone can take seconds.)
    const result = await runCli(['diagnose', ...pg, ...args], { env, timeoutMs: 15_000 });
    expectOneLine(result, 2, 'cannot open transcript', reason);
  });
});

describe('two runs of one incident at once', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('never interleave inside a line, and the export reads both runs', async () => {
    const state = fs.mkdtempSync(join(tmpdir(), 'poolctl-two-'));
    const pathOf = (incident: string) => join(state, 'poolctl', 'incidents', `${incident}.jsonl`);
    const diagnose = (incident: string) =>
      runCli(['diagnose', '--pg', server.superuserUrl, '--incident', incident], {
        env: { XDG_STATE_HOME: state },
      });
    // Until the two runs really overlap in the file (on a busy machine one may finish first):
    // the second starts before the first ends.
    let path = '';
    for (let attempt = 0; attempt < 5 && !path; attempt++) {
      const incident = `inc-two-${attempt}`;
      const results = await Promise.all([diagnose(incident), diagnose(incident)]);
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const types = readEvents(pathOf(incident)).map((e) => e.type);
      if (types.lastIndexOf('session.start') < types.indexOf('session.end'))
        path = pathOf(incident);
    }
    expect(path, 'the two runs never overlapped').not.toBe('');
    // Every line is one whole event (the reader throws on a damaged one).
    const events = readEvents(path);
    const runs = new Set(events.map((e) => e.run as string));
    expect(runs.size).toBeGreaterThanOrEqual(2);

    const exported = await runCli(['transcript', 'export', path, '--format', 'json']);
    expect(exported.code, exported.stderr).toBe(0);
    const doc = JSON.parse(exported.stdout) as {
      summary: {
        runs: { command: string; status?: string; exitCode?: number }[];
        warnings: string[];
      };
    };
    expect(doc.summary.runs.length).toBe(events.filter((e) => e.type === 'session.start').length);
    for (const run of doc.summary.runs)
      expect(run).toMatchObject({ command: 'diagnose', exitCode: 0 });
    expect(doc.summary.warnings).toEqual([]);
  });
});
