import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startCli } from '../helpers/run-cli.js';
import { startStallProxy, type StallProxy } from '../helpers/stall-proxy.js';
import { readEvents, sleep } from '../helpers/expect.js';

// Fault suite: Ctrl-C between the two changes of
// `prevent --apply statement-timeout --apply idle-in-transaction-timeout --yes`, against a real
// PostgreSQL behind a proxy that stops answering as the second fix reads its setting (its
// preview). The first change is done and read back; the second was never sent. The transcript
// must say exactly that, the server must agree, and the run must end at once with exit 130.

/** The server's URL with its port replaced by the proxy's. */
function through(url: string, proxy: StallProxy): string {
  const u = new URL(url);
  u.port = String(proxy.port);
  return u.toString();
}

/** What a new session on appdb gets: the database-level settings ALTER DATABASE wrote. */
async function databaseSettings(server: PgServer): Promise<string> {
  return (
    await server.psql(
      `SELECT coalesce(string_agg(cfg, ',' ORDER BY cfg), '') FROM pg_db_role_setting s
         JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS cfg
        WHERE d.datname = 'appdb' AND s.setrole = 0`,
    )
  ).trim();
}

/** Second-long statement timeouts: a stalled statement is given up on after 2 s. */
const TIMEOUTS = ['--connect-timeout', '2s', '--statement-timeout', '2s'];

describe('Ctrl-C between the two fixes of prevent --apply (PostgreSQL)', () => {
  let server: PgServer;
  let proxy: StallProxy;
  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 40 });
  }, 120_000);
  beforeEach(async () => {
    await server.psql('ALTER DATABASE appdb RESET ALL');
  });
  afterEach(async () => {
    await proxy?.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const applyBoth = (transcript: string) => {
    const superuser = new URL(server.superuserUrl);
    return startCli([
      'prevent',
      '--pg',
      through(server.url(superuser.username, superuser.password, 'appdb'), proxy),
      '--apply',
      'statement-timeout',
      '--apply',
      'idle-in-transaction-timeout',
      '--yes',
      '--output',
      'json',
      ...TIMEOUTS,
      '--transcript',
      transcript,
    ]);
  };
  const text = (transcript: string) =>
    existsSync(transcript) ? readFileSync(transcript, 'utf8') : '';

  it('records the first as applied and the second as never sent; the server agrees; exit 130', async () => {
    expect(await databaseSettings(server)).toBe('');
    proxy = await startStallProxy({ host: server.host, port: server.port });
    // The second fix's preview reads its setting: from there on the server seems to hang.
    // The read is one SQL for every setting, the name bound as $1: it travels in the Bind
    // message, after its length (35 = '#').
    proxy.stallWhenClientSends(/\0\0\0#idle_in_transaction_session_timeout/);
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-int-prevent-')), 't.jsonl');
    const started = applyBoth(transcript);
    // Wait until the first change is read back and the second preview is stuck.
    const deadline = Date.now() + 20_000;
    while ((text(transcript).match(/"type":"change\.outcome"/g) ?? []).length < 1) {
      if (Date.now() > deadline) throw new Error(`no change was recorded: ${started.stderr()}`);
      await sleep(5);
    }
    await sleep(500);
    const signalled = Date.now();
    started.child.kill('SIGINT');
    const code = await started.exited;
    const tookMs = Date.now() - signalled;

    expect(code, started.stderr()).toBe(130);
    expect(tookMs).toBeLessThan(3_000);
    expect(started.stderr()).toContain('interrupted');

    const events = readEvents(transcript);
    const intents = events.filter((e) => e.type === 'change.intent');
    const outcomes = events.filter((e) => e.type === 'change.outcome');
    // Exactly one change was meant and done: statement_timeout, read back as 30 s.
    expect(intents.map((e) => e.step)).toEqual(['statement-timeout']);
    expect(intents[0]!.setting).toMatchObject({
      name: 'statement_timeout',
      current: '0',
      next: '30',
    });
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ step: 'statement-timeout', status: 'confirmed' });
    expect(outcomes[0]!.detail).toBe('statement_timeout is 30');
    // The second fix never reached its approval, let alone the server.
    expect(events.some((e) => e.step === 'idle-in-transaction-timeout' && e.type !== 'step')).toBe(
      false,
    );
    expect(events.at(-1)).toMatchObject({
      type: 'session.end',
      status: 'interrupted',
      exitCode: 130,
    });

    // The server agrees: statement_timeout (30 s, in ms) set on the database, nothing else.
    expect(await databaseSettings(server)).toBe('statement_timeout=30000');
  }, 60_000);

  it('Ctrl-C while the second ALTER waits for an answer that never comes: recorded as unknown, not failed', async () => {
    proxy = await startStallProxy({ host: server.host, port: server.port });
    // The second ALTER reaches the server (which applies it); its answer never comes back.
    proxy.stallWhenClientSends(/ALTER DATABASE \S+ SET idle_in_transaction_session_timeout/);
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-int-prevent-')), 't.jsonl');
    const started = applyBoth(transcript);
    const deadline = Date.now() + 20_000;
    while ((text(transcript).match(/"type":"change\.intent"/g) ?? []).length < 2) {
      if (Date.now() > deadline) throw new Error(`no second intent: ${started.stderr()}`);
      await sleep(5);
    }
    await sleep(200);
    const signalled = Date.now();
    started.child.kill('SIGINT');
    const code = await started.exited;
    const tookMs = Date.now() - signalled;

    expect(code, started.stderr()).toBe(130);
    // The change in flight is finished first: bounded by the statement timeout (2 s + grace).
    expect(started.stderr()).toContain('finishing the step in flight');
    expect(tookMs).toBeLessThan(6_000);
    const events = readEvents(transcript);
    expect(events.filter((e) => e.type === 'change.intent').map((e) => e.step)).toEqual([
      'statement-timeout',
      'idle-in-transaction-timeout',
    ]);
    const outcomes = events.filter((e) => e.type === 'change.outcome');
    expect(outcomes.map((o) => [o.step, o.status])).toEqual([
      ['statement-timeout', 'confirmed'],
      // Sent, unanswered: it may have been applied. Never 'failed' without a read-back.
      ['idle-in-transaction-timeout', 'not-confirmed'],
    ]);
    expect(outcomes[1]!.detail).toContain('no answer');
    expect(outcomes[1]!.detail).toContain('whether it was applied is unknown');
    expect(events.at(-1)).toMatchObject({
      type: 'session.end',
      status: 'interrupted',
      exitCode: 130,
    });
    // And rightly so: the server did apply it.
    expect(await databaseSettings(server)).toBe(
      'idle_in_transaction_session_timeout=30000,statement_timeout=30000',
    );
  }, 60_000);
});
