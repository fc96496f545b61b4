import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDiagnoseOptions, runDiagnose } from '../../src/commands/diagnose.js';
import { parseMitigateOptions, runMitigate } from '../../src/commands/mitigate.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// The wizard's verify is the same verdict as `poolctl verify`: only healthy is a recovery, and a
// verify that did not reach its thresholds ends the run with exit 4, not 0.
describe('diagnose → mitigate → verify at a terminal', () => {
  let server: PgServer;
  let held: HeldSessions;
  let oncallUrl: string;
  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 30, superuserReservedConnections: 3 });
    oncallUrl = await server.createRole('oncall', ['pg_monitor', 'pg_signal_backend']);
    held = await holdSessions(server.appUrl, { idle: 20, long: 3 });
    await new Promise((r) => setTimeout(r, 1200));
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  it('kills the idle sessions, verifies, says not recovered while long queries run, exits 4', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-flow-'));
    const prompter = new ScriptedPrompter([
      { expect: 'Which mitigation?', answer: 'kill-idle' },
      { expect: 'Terminate idle connections: terminate these 20 sessions?', answer: true },
      { expect: 'Verify the recovery now?', answer: true },
      { expect: 'Next?', answer: 'done' },
    ]);
    const deps = inProcessDeps(prompter, { stateDir });
    const outcome = await runDiagnose(
      parseDiagnoseOptions({
        pg: oncallUrl,
        incident: 'flow',
        set: ['kill_idle_after=1s', 'leak_idle_after=1s', 'long_query_after=1s'],
      }),
      deps,
    );
    prompter.verify();
    const out = deps.io.stdout();
    expect(out).toMatch(/^poolctl diagnose · /);
    expect(out).toContain('! No long-running queries');
    expect(out).toContain('✖ Not recovered yet: utilization 11.1% (3 of 27); 1 check above failed');
    expect(out).not.toContain('Recovered:');
    expect(outcome).toEqual({ exitCode: 4, status: 'warning' });
  });

  it('mitigate without --action: the same verdict and exit 4 after a verify that fell short', async () => {
    const more = await holdSessions(server.appUrl, { idle: 20 });
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const prompter = new ScriptedPrompter([
        { expect: 'Which mitigation?', answer: 'kill-idle' },
        { expect: 'Terminate idle connections: terminate these 20 sessions?', answer: true },
        { expect: 'Verify the recovery now?', answer: true },
        { expect: 'Next?', answer: 'done' },
      ]);
      const deps = inProcessDeps(prompter, {
        stateDir: mkdtempSync(join(tmpdir(), 'poolctl-flow-')),
      });
      const outcome = await runMitigate(
        parseMitigateOptions({
          pg: oncallUrl,
          incident: 'flow-mitigate',
          set: ['kill_idle_after=1s', 'leak_idle_after=1s', 'long_query_after=1s'],
        }),
        deps,
      );
      prompter.verify();
      const out = deps.io.stdout();
      expect(out).toMatch(/^poolctl mitigate · /);
      expect(out).toContain('✖ Not recovered yet');
      expect(outcome).toEqual({ exitCode: 4, status: 'warning' });
    } finally {
      await more.close();
    }
  });
});
