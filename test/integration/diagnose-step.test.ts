import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDiagnoseOptions, runDiagnose } from '../../src/commands/diagnose.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';
import { inProcessDeps } from '../helpers/in-process.js';
import { readEvents } from '../helpers/expect.js';

describe('diagnose --step walks the runbook one step at a time', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
    // The documented on-call grant; without it the diagnosis is critical (it cannot see others).
    await server.psql('GRANT pg_monitor TO app;');
  });
  afterAll(async () => server?.stop());

  it('continue, note, re-run, skip and quit do what they say, and the notes reach the transcript', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-step-'));
    const prompter = new ScriptedPrompter([
      { expect: 'How full is the server: ok. Next?', answer: 'note' },
      { expect: 'Note on "How full is the server"', answer: 'dashboards agree: 3% used' },
      { expect: 'How full is the server: ok. Next?', answer: 'rerun' },
      { expect: 'How full is the server: ok. Next?', answer: 'continue' },
      { expect: 'Connections by state: ok. Next?', answer: 'skip' },
      { expect: 'Idle connections (leak suspects): ok. Next?', answer: 'quit' },
    ]);
    const deps = inProcessDeps(prompter, { stateDir, argv: ['poolctl', 'diagnose', '--step'] });
    const outcome = await runDiagnose(
      parseDiagnoseOptions({ pg: server.appUrl, step: true, incident: 'step-walk' }),
      deps,
    );
    prompter.verify();
    expect(outcome).toEqual({ exitCode: 0, status: 'healthy' });
    expect(deps.io.stdout()).toContain('Stopped early: not every step ran.');

    const events = readEvents(join(stateDir, 'poolctl/incidents/step-walk.jsonl'));
    expect(events.filter((e) => e.type === 'note')).toEqual([
      expect.objectContaining({ step: 'utilization', text: 'dashboards agree: 3% used' }),
    ]);
    // Every answer the operator gave is recorded, by the prompter itself.
    expect(
      events.filter((e) => e.type === 'prompt').map((e) => [e.question, e.answer, e.answeredBy]),
    ).toEqual([
      ['How full is the server: ok. Next?', 'note', 'operator'],
      ['Note on "How full is the server":', 'dashboards agree: 3% used', 'operator'],
      ['How full is the server: ok. Next?', 'rerun', 'operator'],
      ['How full is the server: ok. Next?', 'continue', 'operator'],
      ['Connections by state: ok. Next?', 'skip', 'operator'],
      ['Idle connections (leak suspects): ok. Next?', 'quit', 'operator'],
    ]);
    const results = events.filter((e) => e.type === 'step.result').map((e) => [e.step, e.status]);
    expect(results).toEqual([
      ['utilization', 'ok'],
      ['utilization', 'ok'], // the re-run
      ['states', 'ok'],
      ['long-running', 'skipped'],
      ['idle-leaks', 'ok'],
      ['idle-groups', 'skipped'],
      ['idle-in-transaction', 'skipped'],
      ['lock-waits', 'skipped'],
      ['holders', 'skipped'],
      ['server-exporter', 'skipped'],
      ['app-pool', 'skipped'],
      ['app-pool-trend', 'skipped'],
      ['app-deployment', 'skipped'],
      ['app-pods', 'skipped'],
      ['app-logs-leaks', 'skipped'],
      ['recent-changes', 'skipped'],
      ['app-rollouts', 'skipped'],
      ['recent-db-code-changes', 'skipped'],
    ]);
  });

  it('refuses --step without a terminal', async () => {
    await expect(
      runDiagnose(
        parseDiagnoseOptions({ pg: server.appUrl, step: true }),
        inProcessDeps(new ScriptedPrompter([]), { tty: false }),
      ),
    ).rejects.toThrow('--step needs a terminal');
  });
});
