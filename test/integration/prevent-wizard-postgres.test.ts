import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMitigateOptions, runMitigate } from '../../src/commands/mitigate.js';
import { parsePreventOptions, runPrevent } from '../../src/commands/prevent.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { holdSessions } from '../helpers/sessions.js';
import { runCli } from '../helpers/run-cli.js';

// The seeds end every incident with Prevention: at a terminal, prevent and the wizard offer the
// missing timeouts themselves, each through the one destructive path (preview, its own approval,
// the read-back), instead of only printing the command.
describe('prevention offered at a terminal (PostgreSQL)', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 30 });
  });
  afterAll(async () => server?.stop());

  const databaseSettings = async (db: string) =>
    (
      await server.psql(
        `SELECT coalesce(string_agg(cfg, ',' ORDER BY cfg), '') FROM pg_db_role_setting s
           JOIN pg_database d ON d.oid = s.setdatabase CROSS JOIN LATERAL unnest(s.setconfig) cfg
          WHERE d.datname = '${db}' AND s.setrole = 0`,
      )
    ).trim();
  const stateDir = () => mkdtempSync(join(tmpdir(), 'poolctl-prevent-wizard-'));

  it('prevent offers each missing timeout; what is approved is applied, the rest still fails the audit', async () => {
    await server.psql('CREATE DATABASE offered');
    const url = server.superuserUrl.replace(/\/postgres$/, '/offered');

    const first = new ScriptedPrompter([
      { expect: 'Apply a prevention fix?', answer: 'statement-timeout' },
      { expect: "Set the database's statement timeout: change this setting?", answer: true },
      { expect: 'Apply a prevention fix?', answer: 'none' },
    ]);
    const deps = inProcessDeps(first, { stateDir: stateDir() });
    const outcome = await runPrevent(parsePreventOptions({ pg: url }), deps);
    first.verify();
    expect(await databaseSettings('offered')).toBe('statement_timeout=30000');
    const out = deps.io.stdout();
    expect(out).toContain('ALTER DATABASE offered SET statement_timeout = 30000');
    expect(out).toContain('After the fixes');
    // The audit after the fix: the statement timeout passes, the idle-in-transaction one fails.
    const after = out.slice(out.indexOf('After the fixes'));
    expect(after).not.toMatch(/✖ statement_timeout is off/);
    expect(after).toMatch(/✖ idle_in_transaction_session_timeout is off/);
    expect(outcome).toEqual({ exitCode: 4, status: 'critical' });

    // Run again: only what is still missing is offered; approved, the audit passes, exit 0.
    const second = new ScriptedPrompter([
      { expect: 'Apply a prevention fix?', answer: 'idle-in-transaction-timeout' },
      {
        expect: "Set the database's idle-in-transaction timeout: change this setting?",
        answer: true,
      },
    ]);
    const again = inProcessDeps(second, { stateDir: stateDir() });
    expect(await runPrevent(parsePreventOptions({ pg: url }), again)).toMatchObject({
      exitCode: 0,
    });
    second.verify();
    expect(await databaseSettings('offered')).toBe(
      'idle_in_transaction_session_timeout=30000,statement_timeout=30000',
    );
  });

  it('a prevention fix declined at its approval changes nothing and exits 5', async () => {
    await server.psql('CREATE DATABASE declined');
    const url = server.superuserUrl.replace(/\/postgres$/, '/declined');
    const prompter = new ScriptedPrompter([
      { expect: 'Apply a prevention fix?', answer: 'statement-timeout' },
      { expect: "Set the database's statement timeout: change this setting?", answer: false },
      { expect: 'Apply a prevention fix?', answer: 'none' },
    ]);
    const outcome = await runPrevent(
      parsePreventOptions({ pg: url }),
      inProcessDeps(prompter, { stateDir: stateDir() }),
    );
    prompter.verify();
    expect(outcome.exitCode).toBe(5);
    expect(await databaseSettings('declined')).toBe('');
  });

  it('the mitigate wizard, recovered, offers the prevention audit; declined, it names the command', async () => {
    const held = await holdSessions(server.appUrl, { idle: 20 });
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const prompter = new ScriptedPrompter([
        { expect: 'Which mitigation?', answer: 'kill-idle' },
        { expect: 'Terminate idle connections: terminate these 20 sessions?', answer: true },
        { expect: 'Verify the recovery now?', answer: true },
        { expect: 'Next?', answer: 'done' },
        { expect: 'Recovered. Check the prevention now', answer: false },
      ]);
      const deps = inProcessDeps(prompter, { stateDir: stateDir() });
      const outcome = await runMitigate(
        parseMitigateOptions({
          pg: server.superuserUrl,
          set: ['kill_idle_after=1s', 'leak_idle_after=1s'],
        }),
        deps,
      );
      prompter.verify();
      expect(deps.io.stdout()).toMatch(
        /So it does not happen again \(timeouts, capacity, root cause\): poolctl prevent --pg 'postgres:\/\/postgres@/,
      );
      expect(outcome).toEqual({ exitCode: 0, status: 'healthy' });
    } finally {
      await held.close();
    }
  });

  it('the wizard recovered: a prevention fix declined does not turn the exit into 5; the audit sees one poolctl session', async () => {
    const held = await holdSessions(server.appUrl, { idle: 20 });
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const prompter = new ScriptedPrompter([
        { expect: 'Which mitigation?', answer: 'kill-idle' },
        { expect: 'Terminate idle connections: terminate these 20 sessions?', answer: true },
        { expect: 'Verify the recovery now?', answer: true },
        { expect: 'Next?', answer: 'done' },
        { expect: 'Recovered. Check the prevention now', answer: true },
        { expect: 'Apply a prevention fix?', answer: 'statement-timeout' },
        { expect: "Set the database's statement timeout: change this setting?", answer: false },
        { expect: 'Apply a prevention fix?', answer: 'none' },
      ]);
      const deps = inProcessDeps(prompter, { stateDir: stateDir() });
      const outcome = await runMitigate(
        parseMitigateOptions({
          pg: server.superuserUrl,
          set: ['kill_idle_after=1s', 'leak_idle_after=1s'],
        }),
        deps,
      );
      prompter.verify();
      // The incident recovered: its exit is the verify's, whatever became of the prevention.
      expect(outcome).toEqual({ exitCode: 0, status: 'healthy' });
      const out = deps.io.stdout();
      // The wizard's own connection was closed before the audit: the usable-connections step
      // counts no poolctl session (the audit's own is left out as always).
      const audit = out.slice(out.indexOf('Usable connections'));
      expect(audit).toMatch(/│ 0\s+│ 0\s+│ 0\s+│/);
      expect(await databaseSettings('postgres')).toBe('');
    } finally {
      await held.close();
    }
  });

  it('an on-call role that does not own the database: no ALTER DATABASE offered, who can is named; --apply refuses (exit 2), nothing changed', async () => {
    const oncall = await server.createRole('oncall_prevent', ['pg_monitor', 'pg_signal_backend']);
    // Nothing is asked: the only fixes are ones this role may not make.
    const prompter = new ScriptedPrompter([]);
    const deps = inProcessDeps(prompter, { stateDir: stateDir() });
    const outcome = await runPrevent(parsePreventOptions({ pg: oncall }), deps);
    prompter.verify();
    expect(outcome.exitCode).toBe(4);
    expect(deps.io.stdout()).toMatch(
      /Set the database's statement timeout \[statement-timeout\] not offered: ALTER DATABASE appdb needs its owner \(\w+\) or a superuser, and oncall_prevent is neither/,
    );
    const applied = await runCli([
      'prevent',
      '--pg',
      oncall,
      '--apply',
      'statement-timeout',
      '--yes',
    ]);
    expect(applied.code).toBe(2);
    expect(applied.stderr.trim().split('\n')).toHaveLength(1);
    expect(applied.stderr).toContain('ALTER DATABASE appdb needs its owner');
    expect(await databaseSettings('appdb')).toBe('');
  });
});
