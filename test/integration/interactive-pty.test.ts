import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { pathWithThisNode, poolctlBin } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { shellQuote, TmuxSession } from '../helpers/tmux.js';
import { readEvents } from '../helpers/expect.js';

// What users run: the package's bin, bin/poolctl.js, started by the `node` first on PATH.
const nodePath = pathWithThisNode();

describe('the 3 AM wizard in a real terminal', () => {
  let server: PgServer;
  let held: HeldSessions;
  let tmux: TmuxSession | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-pty-'));

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 30 });
    // 26 of 27 usable slots: 19 leaked idle connections, 5 idle in transaction, 2 long queries.
    held = await holdSessions(server.appUrl, { idle: 19, idleInTx: 5, long: 2 });
    await new Promise((r) => setTimeout(r, 1500));
  });

  afterAll(async () => {
    tmux?.kill();
    await held?.close();
    await server?.stop();
  });

  it('Ctrl-C at the confirm changes nothing, exits 130 and closes the transcript', async () => {
    const interruptedState = mkdtempSync(join(tmpdir(), 'poolctl-pty-'));
    const session = new TmuxSession(
      [
        'env -u CI',
        `XDG_STATE_HOME=${shellQuote(interruptedState)}`,
        `PATH=${shellQuote(nodePath)}`,
        shellQuote(poolctlBin),
        'mitigate --action kill-idle --set kill_idle_after=1s --pg',
        shellQuote(server.superuserUrl),
        '; echo "EXIT:$?"; sleep 600',
      ].join(' '),
    );
    try {
      await session.waitFor(/terminate these 19 sessions\? \(y\/N\)/);
      session.keys('C-c');
      const end = await session.waitFor(/EXIT:\d+/);
      expect(end).toContain('EXIT:130');
      expect(end).toContain('poolctl: interrupted');
      const dir = join(interruptedState, 'poolctl', 'incidents');
      const [file] = readdirSync(dir);
      const events = readEvents(join(dir, file!));
      expect(events.at(-1)).toMatchObject({
        type: 'session.end',
        status: 'interrupted',
        exitCode: 130,
      });
      expect(events.some((e) => e.type === 'action' && e.executed)).toBe(false);
    } finally {
      session.kill();
    }
    const admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [held.pids],
      );
      expect(rows[0].n).toBe(26);
    } finally {
      await admin.end();
    }
  });

  it('a `y` at the typed-count confirm asks again; n declines with a message, exit 5', async () => {
    const typedState = mkdtempSync(join(tmpdir(), 'poolctl-pty-'));
    const session = new TmuxSession(
      [
        'env -u CI',
        `XDG_STATE_HOME=${shellQuote(typedState)}`,
        `PATH=${shellQuote(nodePath)}`,
        shellQuote(poolctlBin),
        'mitigate --action kill-idle --set kill_idle_after=1s --set confirm_typed_over=5 --pg',
        shellQuote(server.superuserUrl),
        '; echo "EXIT:$?"; sleep 600',
      ].join(' '),
    );
    try {
      await session.waitFor('Type 19 to confirm, or n / empty to decline:');
      session.keys('y', 'Enter');
      const again = await session.waitFor('type 19 to confirm, or n / empty to decline');
      expect(again).not.toMatch(/EXIT:/);
      session.keys('BSpace', 'n', 'Enter');
      const end = await session.waitFor(/EXIT:\d+/);
      expect(end).toContain('Declined: nothing was changed.');
      expect(end).toContain('EXIT:5');
      const dir = join(typedState, 'poolctl', 'incidents');
      const [file] = readdirSync(dir);
      const prompts = readEvents(join(dir, file!)).filter((e) => e.type === 'prompt');
      expect(prompts.map((e) => [e.answer, e.answeredBy])).toEqual([['no', 'operator']]);
    } finally {
      session.kill();
    }
    const admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [held.pids],
      );
      expect(rows[0].n).toBe(26);
    } finally {
      await admin.end();
    }
  });

  it('diagnose ⏎ → kill-idle ⏎ → y ⏎ → verify ⏎ → done ⏎ → prevention ⏎ → each timeout ⏎ y: frees exactly the idle sessions, sets the seed timeouts', async () => {
    const command = [
      'env -u CI',
      `XDG_STATE_HOME=${shellQuote(stateDir)}`,
      `PATH=${shellQuote(nodePath)}`,
      shellQuote(poolctlBin),
      'diagnose --pg',
      shellQuote(server.superuserUrl),
      '--set leak_idle_after=1s --set kill_idle_after=1s --set idle_in_tx_after=1s',
      '; echo "EXIT:$?"; sleep 600',
    ].join(' ');
    tmux = new TmuxSession(command);

    const first = await tmux.waitFor('Which mitigation?');
    expect(first).toContain('96.3% full: 26 of 27 usable connections');
    expect(first).toMatch(/❯ Terminate idle connections \[kill-idle\]/);
    tmux.keys('Enter');

    const table = await tmux.waitFor(/terminate these 19 sessions\? \(y\/N\)/);
    expect(table).toContain('Will terminate 19 sessions.');
    tmux.keys('y', 'Enter');

    const after = await tmux.waitFor('Verify the recovery now?');
    expect(after).toMatch(/19 terminated/);
    expect(after).toMatch(/Utilization 96\.3% → 25\.9%/);
    tmux.keys('Enter');

    const verified = await tmux.waitFor('Next?');
    tmux.keys('Enter');
    expect(verified).toContain('Recovered: utilization 25.9%');

    // Recovered: the seeds' Prevention, audited read-only, then each missing timeout offered.
    await tmux.waitFor('Check the prevention now');
    tmux.keys('Enter');
    const audit = await tmux.waitFor('Apply a prevention fix?');
    expect(audit).toContain('Prevention audit');
    expect(audit).toMatch(/✖ statement_timeout is off for new sessions on postgres/);
    expect(audit).toMatch(/❯ .*\[statement-timeout\]/);
    tmux.keys('Enter');
    const preview = await tmux.waitFor(/\(y\/N\)/);
    expect(preview).toContain('ALTER DATABASE');
    tmux.keys('y', 'Enter');
    const second = await tmux.waitFor(/❯ .*\[idle-in-transaction-timeout\]/);
    expect(second).toMatch(/statement_timeout .*30s/);
    tmux.keys('Enter');
    await tmux.waitFor(/idle-in-transaction timeout: change .*\(y\/N\)/);
    tmux.keys('y', 'Enter');
    const end = await tmux.waitFor(/EXIT:\d+/);
    expect(end).toContain('EXIT:0');

    // The database agrees: the idle sessions are gone, nothing else was touched.
    const admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [held.pids],
      );
      const alive = rows.map((r) => r.pid as number).sort((a, b) => a - b);
      expect(alive).toEqual([...held.byKind.idleInTx, ...held.byKind.long].sort((a, b) => a - b));
    } finally {
      await admin.end();
    }

    // The seeds' timeouts, for every new session on the database, as the operator approved.
    const settings = new pg.Client({ connectionString: server.superuserUrl });
    await settings.connect();
    try {
      const { rows } = await settings.query(
        `SELECT unnest(setconfig) AS setting FROM pg_db_role_setting s
           JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'postgres' ORDER BY 1`,
      );
      expect(rows.map((r) => r.setting)).toEqual([
        'idle_in_transaction_session_timeout=30000',
        'statement_timeout=30000',
      ]);
    } finally {
      await settings.end();
    }

    // One transcript holds the whole night: findings, the operator's answers, the kill, verify.
    const dir = join(stateDir, 'poolctl', 'incidents');
    const [file] = readdirSync(dir);
    const events = readEvents(join(dir, file!));
    const prompts = events
      .filter((e) => e.type === 'prompt')
      .map((e) => [e.question, e.answer, e.answeredBy]);
    expect(prompts).toEqual([
      ['Which mitigation?', 'kill-idle', 'operator'],
      ['Terminate idle connections: terminate these 19 sessions?', 'yes', 'operator'],
      ['Verify the recovery now?', 'yes', 'operator'],
      ['Next?', 'done', 'operator'],
      [
        'Recovered. Check the prevention now (timeouts, capacity, root cause; read-only)?',
        'yes',
        'operator',
      ],
      ['Apply a prevention fix?', 'statement-timeout', 'operator'],
      ["Set the database's statement timeout: change this setting?", 'yes', 'operator'],
      ['Apply a prevention fix?', 'idle-in-transaction-timeout', 'operator'],
      ["Set the database's idle-in-transaction timeout: change this setting?", 'yes', 'operator'],
    ]);
    expect(events.find((e) => e.type === 'action')?.results).toHaveLength(19);
    expect(events.at(-1)).toMatchObject({ type: 'session.end', status: 'healthy', exitCode: 0 });
  });
});
