import { describe, expect, it } from 'vitest';
import { buildIncident, toHtml, toJson, toMarkdown } from '../../src/transcript/export/index.js';
import { normalizeEvent } from '../../src/transcript/normalize.js';
import type { RecordedEvent } from '../../src/transcript/types.js';

// A kill's record as the writer leaves it: the intent (fsynced before the kill statement), one
// outcome event per batch, the confirmation, then the action itself. A run killed in the middle
// leaves a prefix of it.

const victim = (pid: number) => ({
  pid,
  sessionToken: `2026-11-22 03:00:0${pid % 10}+00`,
  queryToken: '',
  user: 'app',
  application: 'api',
  client: '10.0.0.7',
  state: 'idle',
  inStateS: 900,
  query: 'SELECT 1',
  superuser: false,
});

const at = (s: number) => `2026-11-22T03:15:${String(s).padStart(2, '0')}.000Z`;

/** The lines as written, read back as the reader reads them. */
function kill(run: string, t: number, pids: number[]): RecordedEvent[] {
  const victims = pids.map(victim);
  const lines: Record<string, unknown>[] = [
    {
      type: 'session.start',
      ts: at(t),
      run,
      command: 'mitigate',
      runbook: 'pg-pool-exhausted',
      targets: ['postgres://app@db/app'],
    },
    {
      type: 'prompt',
      ts: at(t + 1),
      run,
      question: `Terminate idle: terminate these ${pids.length} sessions?`,
      answer: 'yes',
      answeredBy: '--yes',
    },
    {
      type: 'intent',
      ts: at(t + 2),
      run,
      step: 'kill-idle',
      mode: 'terminate',
      approvedBy: '--yes',
      victims,
    },
    {
      type: 'outcome',
      ts: at(t + 3),
      run,
      step: 'kill-idle',
      mode: 'terminate',
      results: [
        { pid: pids[0], outcome: 'signalled' },
        { pid: pids[1], outcome: 'already-gone' },
      ],
    },
    {
      type: 'outcome',
      ts: at(t + 4),
      run,
      step: 'kill-idle',
      mode: 'terminate',
      results: [{ pid: pids[0], outcome: 'terminated' }],
    },
    {
      type: 'action',
      ts: at(t + 5),
      run,
      id: 'kill-idle',
      kind: 'terminate',
      mode: 'terminate',
      executed: true,
      dryRun: false,
      declined: false,
      answeredBy: '--yes',
      victims,
      spared: [],
      results: [
        { pid: pids[0], outcome: 'terminated' },
        { pid: pids[1], outcome: 'already-gone' },
        { pid: pids[2], outcome: 'terminated' },
      ],
      outcomes: { terminated: 2, 'already-gone': 1 },
      stoppedEarly: false,
    },
    { type: 'session.end', ts: at(t + 6), run, status: 'healthy', exitCode: 0 },
  ];
  return lines.map(normalizeEvent);
}

const opts = { incident: 'inc-1' };

describe('an intent without its action (the run was killed in the middle)', () => {
  it('names every victim, with "outcome unknown" where no outcome was recorded', () => {
    const events = kill('r1', 0, [101, 102, 103]).slice(0, 3);
    const report = buildIncident(events, opts);
    expect(report.actions).toHaveLength(1);
    const [a] = report.actions;
    expect(a).toMatchObject({ id: 'kill-idle', executed: true, interrupted: true });
    expect(a!.prompt?.answeredBy).toBe('--yes');
    expect(a!.victims.map((v) => [v.pid, v.outcome])).toEqual([
      [101, 'unknown'],
      [102, 'unknown'],
      [103, 'unknown'],
    ]);
    expect(a!.victims[0]!.reason).toBe('outcome unknown: the run was interrupted');
    const md = toMarkdown(report, {});
    expect(md).toContain('**Interrupted:**');
    expect(md).toContain('outcome unknown: the run was interrupted');
    expect(toHtml(report, {})).toContain('outcome unknown: the run was interrupted');
    const json = JSON.parse(toJson(report, events)) as { summary: { actions: unknown } };
    expect(json.summary.actions).toMatchObject({ executed: 1, outcomes: { unknown: 3 } });
  });

  it('applies the outcomes of the batches that finished', () => {
    const events = kill('r1', 0, [101, 102, 103]).slice(0, 4);
    const [a] = buildIncident(events, opts).actions;
    expect(a!.victims.map((v) => [v.pid, v.outcome])).toEqual([
      [101, 'signalled'],
      [102, 'already-gone'],
      [103, 'unknown'],
    ]);
    expect(a!.victims[0]!.reason).toContain('outcome unknown: the run was interrupted');
    expect(a!.outcomes).toEqual({ signalled: 1, 'already-gone': 1, unknown: 1 });
  });

  it('is one action once its own event arrives', () => {
    const report = buildIncident(kill('r1', 0, [101, 102, 103]), opts);
    expect(report.actions).toHaveLength(1);
    expect(report.actions[0]!.interrupted).toBeUndefined();
    expect(report.actions[0]!.outcomes).toEqual({ terminated: 2, 'already-gone': 1 });
    expect(report.actions[0]!.prompt?.answer).toBe('yes');
    expect(report.timeline.map((t) => t.event)).toEqual([
      'start',
      'prompt',
      'intent',
      'outcome',
      'outcome',
      'action',
      'end',
    ]);
    expect(report.timeline[2]!.text).toBe(
      'kill-idle: about to terminate 3 sessions (approved by --yes)',
    );
    expect(report.timeline[3]!.text).toBe('kill-idle: signalled 1, already-gone 1');
  });
});

describe('two runs of one incident writing at once', () => {
  it('gives each run its own events, actions and end', () => {
    const a = kill('a', 0, [1, 2, 3]);
    const b = kill('b', 1, [7, 8, 9]);
    // Interleaved line by line, as two processes appending to one file leave them.
    const events = a.flatMap((e, i) => [e, b[i]!]);
    events[events.length - 1] = normalizeEvent({ ...b.at(-1)!, status: 'critical', exitCode: 4 });
    const report = buildIncident(events, opts);
    expect(report.summary.runs.map((r) => [r.command, r.status, r.exitCode])).toEqual([
      ['mitigate', 'healthy', 0],
      ['mitigate', 'critical', 4],
    ]);
    expect(report.actions).toHaveLength(2);
    expect(report.actions.map((x) => x.victims.map((v) => v.pid))).toEqual([
      [1, 2, 3],
      [7, 8, 9],
    ]);
    expect(report.actions.every((x) => !x.interrupted && x.prompt?.answer === 'yes')).toBe(true);
  });
});
