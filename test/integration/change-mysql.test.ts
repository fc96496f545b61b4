/**
 * A database setting changed through the one destructive path, on a stock MariaDB: the preview
 * shows current → new, the intent is recorded before the statement, the effect is read back from
 * the server, and an account without the privilege fails the change in one line (exit 4).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEvents } from '../helpers/expect.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  actions: {
    id: string;
    executed: boolean;
    commands?: { command: string[]; status: string; detail?: string }[];
    setting?: { name: string; current: string; next: string; after?: string };
  }[];
}

let server: MariaDBServer;
let original: string;

const maxConnections = async () => (await server.sql('SELECT @@GLOBAL.max_connections')).trim();

beforeAll(async () => {
  server = await startMariaDB();
  original = await maxConnections();
}, 120_000);

afterEach(async () => {
  await server.sql(`SET GLOBAL max_connections = ${original}`);
});

afterAll(async () => {
  await server?.stop();
});

const raise = (url: string, value: string, ...rest: string[]) => [
  'mitigate',
  '--mysql',
  url,
  '--action',
  'raise-max-connections',
  '--set',
  `new_max_connections=${value}`,
  '--output',
  'json',
  ...rest,
];

describe('raise-max-connections on MariaDB', () => {
  it('with --yes: the intent names current and new value before SET GLOBAL; the value read back', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-change-')), 't.jsonl');
    const next = String(Number(original) + 17);
    const r = await runCli(raise(server.rootUrl, next, '--yes', '--transcript', transcript));
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.setting).toEqual({
      name: 'max_connections',
      current: original,
      next,
      after: next,
    });
    expect(action.commands!.map((c) => c.status)).toEqual(['confirmed']);
    expect(await maxConnections()).toBe(next);
    const events = readEvents(transcript);
    const intent = events.findIndex((e) => e.type === 'change.intent');
    const outcome = events.findIndex((e) => e.type === 'change.outcome');
    expect(intent).toBeGreaterThan(-1);
    expect(intent).toBeLessThan(outcome);
    expect(events[intent]).toMatchObject({
      approvedBy: '--yes',
      setting: { name: 'max_connections', current: original, next },
    });
  }, 60_000);

  it('--dry-run shows current → new and changes nothing', async () => {
    const r = await runCli(raise(server.rootUrl, '999', '--dry-run'));
    expect(r.stderr).toContain('would change 1 setting');
    expect(await maxConnections()).toBe(original);
  }, 60_000);

  it('the value it already has: nothing to change, nothing recorded as done', async () => {
    const r = await runCli(raise(server.rootUrl, original, '--yes'));
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Report).actions[0]!.executed).toBe(false);
  }, 60_000);

  it('without --yes and without a terminal: says what it would change, changes nothing, exit 5', async () => {
    const r = await runCli(raise(server.rootUrl, String(Number(original) + 9)));
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('would change 1 setting: pass --yes');
    expect(await maxConnections()).toBe(original);
  }, 60_000);

  it('never lowers the limit: exit 2, nothing changed', async () => {
    const r = await runCli(raise(server.rootUrl, String(Number(original) - 1), '--yes'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/only raises; nothing was done/);
    expect(await maxConnections()).toBe(original);
  }, 60_000);

  it('no record, no change: a transcript that cannot be written (a full disk) refuses the SET GLOBAL (exit 2)', async () => {
    const r = await runCli(raise(server.rootUrl, '333', '--yes', '--transcript', '/dev/full'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to change 1 setting without a record/);
    expect(await maxConnections()).toBe(original);
  }, 60_000);

  it('an account without the privilege: the change fails in one line with the server reason, exit 4', async () => {
    const url = await server.createAccount('process-only', 'no_super');
    const r = await runCli(raise(url, '777', '--yes'));
    expect(r.code).toBe(4);
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action.commands).toEqual([
      expect.objectContaining({ status: 'failed', detail: expect.stringMatching(/SUPER|denied/i) }),
    ]);
    expect(await maxConnections()).toBe(original);
  }, 60_000);
});
