import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { sleep } from '../helpers/expect.js';

// Fault suite: the transcript's disk is full, or read-only. A kill whose intent cannot be written
// is not done (exit 2, one line saying why); a read-only diagnosis still runs, warning once that
// nothing is being recorded. Root ignores mode bits, so "unwritable" is a read-only mount.

const VICTIMS = 40; // an intent of ≈ 10 KB: more than the one page left free below
const PAGE = 4096;

/** A small tmpfs of its own; unmounted by `unmount`. Needs root (as CI and this machine run). */
function mountTmpfs(sizeKb: number): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'poolctl-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=0700`, 'tmpfs', dir]);
  return dir;
}

function unmount(dir: string): void {
  execFileSync('umount', [dir]);
  fs.rmdirSync(dir);
}

/** Fills the file system at `dir` up to `free` bytes (whole pages) from the end. */
function fillLeaving(dir: string, free: number): void {
  const filler = join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  const size = fs.fstatSync(fd).size;
  fs.ftruncateSync(fd, Math.floor(size / PAGE) * PAGE - free);
  fs.closeSync(fd);
}

describe('the transcript cannot be written (PostgreSQL)', () => {
  let server: PgServer;
  let admin: pg.Client;
  let held: HeldSessions;
  let disk: string;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 100 });
    admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });
  beforeEach(async () => {
    disk = mountTmpfs(512);
    held = await holdSessions(server.appUrl, { idle: VICTIMS, appNames: ['api'] });
    await sleep(1200);
  });
  afterEach(async () => {
    await held?.close();
    if (disk) unmount(disk);
  });

  const stillThere = async (): Promise<number> => {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [held.pids],
    );
    return rows[0]!.n;
  };

  const mitigate = (transcript: string) =>
    runCli([
      'mitigate',
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--yes',
      '--protect-app',
      'test-admin',
      '--pg',
      server.superuserUrl,
      '--transcript',
      transcript,
    ]);

  /** The transcript's lines, each of which must be whole JSON: no torn line for a reader. */
  const linesOf = (transcript: string): { type: string; answer?: string }[] => {
    const text = fs.existsSync(transcript) ? fs.readFileSync(transcript, 'utf8') : '';
    expect(text === '' || text.endsWith('\n')).toBe(true);
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; answer?: string });
  };

  const refusal = (transcript: string, code: string) =>
    new RegExp(
      `^poolctl: cannot write transcript ${transcript}: .*${code}.*refusing to terminate ${VICTIMS} sessions without a record: nothing was changed$`,
    );

  it('a full disk with room for the start and the approval but not the intent: the commit fails, nothing killed, exit 2', async () => {
    fillLeaving(disk, PAGE);
    const transcript = join(disk, 'inc.jsonl');
    const result = await mitigate(transcript);

    expect(result.code).toBe(2);
    // One line: the transcript was fine until the intent's own write failed.
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(refusal(transcript, 'ENOSPC')),
    ]);
    expect(await stillThere()).toBe(VICTIMS);
    // The approval is on disk, the intent is not: the refusal came from the failing commit,
    // not from the check before the question.
    const types = linesOf(transcript).map((e) => e.type);
    expect(types).toContain('prompt');
    expect(types).not.toContain('intent');
  });

  it('a disk full before the start: refused before the question, in one line, nothing killed, exit 2', async () => {
    fillLeaving(disk, 0);
    const transcript = join(disk, 'inc.jsonl');
    const result = await mitigate(transcript);

    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(refusal(transcript, 'ENOSPC')),
    ]);
    expect(await stillThere()).toBe(VICTIMS);
    expect(linesOf(transcript)).toEqual([]);
  });

  it('a read-only directory: diagnose runs and warns once; mitigate kills nothing, exit 2', async () => {
    execFileSync('mount', ['-o', 'remount,ro', disk]);
    const transcript = join(disk, 'inc.jsonl');

    const diagnose = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--transcript',
      transcript,
    ]);
    expect([0, 4]).toContain(diagnose.code);
    expect(diagnose.stdout).toContain('%');
    const warnings = diagnose.stderr.split('\n').filter((l) => l.includes(transcript));
    expect(warnings).toEqual([
      `poolctl: warning: cannot open transcript ${transcript}: EROFS: read-only file system, open '${transcript}'; nothing is being recorded`,
    ]);

    // The summary and the JSON document never give the path as if it held the record.
    expect(diagnose.stdout).toContain(
      `Transcript: not recorded: EROFS: read-only file system, open '${transcript}'`,
    );
    expect(diagnose.stdout).not.toContain(`Transcript: ${transcript}`);
    const json = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--transcript',
      transcript,
      '--output',
      'json',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      transcript,
      transcript_unrecorded: `EROFS: read-only file system, open '${transcript}'`,
    });

    // The kill's refusal says why in one line; the start-up warning would only repeat it.
    const result = await mitigate(transcript);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(refusal(transcript, 'EROFS')),
    ]);
    expect(await stillThere()).toBe(VICTIMS);
    expect(fs.existsSync(transcript)).toBe(false);
  });
});
