import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordingPrompter } from '../../src/io/prompter.js';
import { buildIncident, exportIncident } from '../../src/transcript/export/index.js';
import {
  TRANSCRIPT_SCHEMA,
  type EventType,
  type TranscriptEvent,
} from '../../src/transcript/types.js';
import { openTranscript, readTranscript } from '../../src/transcript/writer.js';
import { ScriptedPrompter } from '../helpers/scripted-prompter.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/transcripts');

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'poolctl-schema-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const victim = {
  pid: 101,
  sessionToken: '2026-11-22 03:00:01+00',
  queryToken: '',
  user: 'app',
  application: 'api',
  client: '10.0.0.7',
  state: 'idle',
  inStateS: 900,
  query: 'SELECT 1',
  superuser: false,
};

/**
 * One of every event type, as the code records it. The mapped type makes a new event type that
 * has no sample here a compile error: every type is round-tripped.
 */
const SAMPLES: { [K in EventType]: Extract<TranscriptEvent, { type: K }> } = {
  'session.start': {
    type: 'session.start',
    schema: TRANSCRIPT_SCHEMA,
    command: 'mitigate',
    argv: ['mitigate', '--action', 'kill-idle'],
    runbook: 'postgres/pool-exhausted',
    targets: ['postgres://app@db/app'],
    poolctl: '0.1.0',
    mode: 'interactive',
    parameters: { kill_idle_after: '5m' },
    operator: { user: 'oncall', host: 'laptop' },
  },
  'step.start': {
    type: 'step.start',
    step: 'utilization',
    title: 'How full is the server',
    kind: 'query',
    phase: 'diagnose',
  },
  'step.result': {
    type: 'step.result',
    step: 'utilization',
    status: 'ok',
    durationMs: 12,
    rowCount: 1,
    rows: [{ connections: 97 }],
  },
  metrics: {
    type: 'metrics',
    label: 'diagnose',
    metrics: { connections: 97, utilization_percent: 97 },
  },
  finding: {
    type: 'finding',
    id: 'pool-critical',
    severity: 'critical',
    message: '97% of connections in use',
    step: 'utilization',
    suggest: ['kill-idle'],
    count: 97,
  },
  prompt: {
    type: 'prompt',
    question: 'Terminate idle connections: terminate these 1 session?',
    answer: 'yes',
    answeredBy: 'operator',
  },
  intent: {
    type: 'intent',
    step: 'kill-idle',
    title: 'Terminate idle connections',
    mode: 'terminate',
    approvedBy: 'operator',
    victims: [victim],
  },
  outcome: {
    type: 'outcome',
    step: 'kill-idle',
    mode: 'terminate',
    results: [{ pid: 101, outcome: 'terminated' }],
  },
  action: {
    type: 'action',
    id: 'kill-idle',
    title: 'Terminate idle connections',
    kind: 'terminate',
    mode: 'terminate',
    executed: true,
    dryRun: false,
    declined: false,
    answeredBy: 'operator',
    victims: [victim],
    spared: [{ pid: 7, user: 'postgres', application: 'psql', reason: 'superuser' }],
    results: [{ pid: 101, outcome: 'terminated' }],
    before: { utilization_percent: 97 },
    after: { utilization_percent: 12 },
    stoppedEarly: false,
    outcomes: { terminated: 1 },
  },
  manual: {
    type: 'manual',
    step: 'app-logs-leaks',
    command: 'kubectl logs deployment/api',
    status: 'done',
  },
  'change.intent': {
    type: 'change.intent',
    step: 'restart-app',
    title: 'Restart the application',
    target: 'kubernetes',
    approvedBy: '--yes',
    commands: [['kubectl', '--context', 'prod', 'rollout', 'restart', 'deployment/api']],
  },
  'change.outcome': {
    type: 'change.outcome',
    step: 'restart-app',
    command: ['kubectl', '--context', 'prod', 'rollout', 'restart', 'deployment/api'],
    status: 'done',
    detail: 'deployment.apps/api restarted',
  },
  note: { type: 'note', step: 'utilization', text: 'dashboards agree' },
  'session.end': { type: 'session.end', status: 'healthy', exitCode: 0 },
};

/** What each sample reads as in every export's timeline. */
const TIMELINE_TEXT: Record<EventType, string | undefined> = {
  'session.start': 'mitigate started · runbook postgres/pool-exhausted',
  'step.start': undefined, // its result says it all
  'step.result': 'How full is the server (utilization): ok, 1 row, 12 ms',
  metrics: 'diagnose: utilization 97%',
  finding: 'CRITICAL pool-critical: 97% of connections in use',
  prompt: '"Terminate idle connections: terminate these 1 session?" → yes (answered by operator)',
  intent: 'kill-idle: about to terminate 1 session (approved by operator)',
  outcome: 'kill-idle: terminated 1',
  'change.intent':
    'restart-app: about to run kubectl --context prod rollout restart deployment/api (approved by --yes)',
  'change.outcome': 'restart-app: done: deployment.apps/api restarted',
  action: 'kill-idle (terminate): terminated 1 of 1; 1 spared · utilization 97% → 12%',
  manual: 'How full',
  note: 'on utilization: dashboards agree',
  'session.end': 'mitigate ended: healthy, exit 0',
};

describe('every event type round-trips writer → reader → export', () => {
  it('reads back as written (schema 1 in session.start), stamped, each in the timeline', () => {
    expect(TRANSCRIPT_SCHEMA).toBe(1);
    const path = join(tmp, 'all.jsonl');
    const t = openTranscript(path, 'all', { now: () => new Date('2026-11-22T03:15:02.000Z') });
    const order: EventType[] = [
      'session.start',
      'step.start',
      'step.result',
      'metrics',
      'finding',
      'prompt',
      'intent',
      'outcome',
      'action',
      'change.intent',
      'change.outcome',
      'manual',
      'note',
    ];
    for (const type of order) t.append(SAMPLES[type]);
    t.end('healthy', 0);

    const events = readTranscript(path);
    expect(events).toEqual(
      [...order, 'session.end' as const].map((type) => ({
        ...SAMPLES[type],
        ts: '2026-11-22T03:15:02.000Z',
        incident: 'all',
        run: expect.stringMatching(/^[0-9a-f]{8}$/),
      })),
    );

    const report = buildIncident(events, { incident: 'all' });
    const timeline = report.timeline.map((l) => l.text).join('\n');
    for (const type of Object.keys(TIMELINE_TEXT) as EventType[]) {
      const expected = TIMELINE_TEXT[type];
      if (expected) expect(timeline, type).toContain(expected);
    }
    expect(report.actions).toHaveLength(2);
    expect(report.actions[0]).toMatchObject({
      id: 'kill-idle',
      executed: true,
      outcomes: { terminated: 1 },
      prompt: { answer: 'yes', answeredBy: 'operator' },
    });
    // A change whose run ended after its intent: the command's outcome as recorded, interrupted.
    expect(report.actions[1]).toMatchObject({
      id: 'restart-app',
      kind: 'change',
      interrupted: true,
      commands: [{ status: 'done', detail: 'deployment.apps/api restarted' }],
    });
    expect(report.summary.operators).toEqual(['oncall@laptop']);
    expect(report.summary.runs[0]).toMatchObject({ exitCode: 0, status: 'healthy' });
    const md = exportIncident('md', events, { incident: 'all' });
    const html = exportIncident('html', events, { incident: 'all' });
    const json = JSON.parse(exportIncident('json', events, { incident: 'all' })) as {
      events: unknown[];
    };
    expect(md).toContain('kubectl logs deployment/api');
    expect(html).toContain('kubectl logs deployment/api');
    expect(json.events).toEqual(JSON.parse(JSON.stringify(events)));
  });
});

describe('files written before the schema version still read', () => {
  // The shape of the writer before schema 1 (as at 5d7651a and b1edcb1): no `schema`, no `run`,
  // the operator as `user`/`hostname` fields, an action without its `outcomes` counts.
  const path = join(FIXTURES, 'pre-schema.jsonl');

  it('normalises them (schema 0, the operator, the counts, every victim field) and exports them', () => {
    const events = readTranscript(path);
    expect(events).toHaveLength(12);
    const starts = events.flatMap((e) => (e.type === 'session.start' ? [e] : []));
    expect(starts.map((s) => [s.schema, s.command, s.operator, s.parameters])).toEqual([
      [0, 'diagnose', { user: 'oncall', host: 'laptop' }, {}],
      [0, 'mitigate', { user: 'oncall', host: 'laptop' }, { kill_idle_after: '5m' }],
    ]);
    expect(events.every((e) => e.run === undefined)).toBe(true);
    const action = events.find((e) => e.type === 'action');
    expect(action).toMatchObject({ outcomes: { terminated: 1, 'already-gone': 1 } });
    // Victims recorded before sessionToken existed read with every field present.
    expect(action?.type === 'action' && action.victims[0]).toMatchObject({
      pid: 101,
      sessionToken: '',
      superuser: false,
    });

    // … and export as before: runs, operator, the action with its approval, manual step, note.
    const report = buildIncident(events, { incident: 'inc-old' });
    expect(report.summary).toMatchObject({
      incident: 'inc-old',
      status: 'healthy',
      exitCode: 0,
      operators: ['oncall@laptop'],
      actions: { executed: 1, outcomes: { terminated: 1, 'already-gone': 1 } },
    });
    expect(report.actions[0]!.prompt).toEqual({
      question: 'Terminate idle connections: terminate these 2 sessions?',
      answer: 'yes',
      answeredBy: '--yes',
    });
    const md = exportIncident('md', events, { incident: 'inc-old' });
    expect(md).toContain('kubectl logs deployment/api');
    expect(md).toContain('leak in the retry path');
  });

  it('reads an old operator written as one `user@host` string', () => {
    const file = join(tmp, 'op.jsonl');
    writeFileSync(file, '{"type":"session.start","command":"diagnose","operator":"alice@db1"}\n');
    expect(readTranscript(file)[0]).toMatchObject({ operator: { user: 'alice', host: 'db1' } });
  });
});

describe('a line of a type this version does not know', () => {
  it('is kept as unknown, with its fields, and shown as unknown in the exports', () => {
    const file = join(tmp, 'newer.jsonl');
    writeFileSync(
      file,
      [
        '{"type":"session.start","ts":"2026-12-01T00:00:00.000Z","incident":"n","schema":2,"command":"diagnose"}',
        '{"type":"probe.http","ts":"2026-12-01T00:00:01.000Z","incident":"n","url":"https://prometheus:9090","status":200}',
        '{"type":"session.end","ts":"2026-12-01T00:00:02.000Z","incident":"n","status":"healthy","exitCode":0}',
        '',
      ].join('\n'),
    );
    const events = readTranscript(file);
    expect(events[1]).toEqual({
      type: 'unknown',
      recordedType: 'probe.http',
      fields: { url: 'https://prometheus:9090', status: 200 },
      ts: '2026-12-01T00:00:01.000Z',
      incident: 'n',
    });
    const report = buildIncident(events, { incident: 'n' });
    expect(report.summary).toMatchObject({ status: 'healthy', exitCode: 0 });
    expect(report.timeline[1]).toMatchObject({
      event: 'probe.http',
      text: expect.stringContaining('unknown event:'),
    });
    for (const format of ['md', 'html'] as const) {
      expect(exportIncident(format, events, { incident: 'n' })).toContain('unknown event:');
    }
  });
});

describe('recordingPrompter', () => {
  it("records each question the operator answers, with the answer, as the operator's", async () => {
    const path = join(tmp, 'asked.jsonl');
    const t = openTranscript(path, 'asked');
    const scripted = new ScriptedPrompter([
      { expect: 'Which mitigation?', answer: 'kill-idle' },
      { expect: 'Terminate', answer: false },
      { expect: 'Kill 40?', answer: '40' },
      { expect: 'Note:', answer: 'the retry path leaks' },
    ]);
    const prompter = recordingPrompter(scripted, t);
    const choices = [{ value: 'kill-idle', name: 'Kill idle' }];
    expect(await prompter.select('Which mitigation?', choices, 'kill-idle')).toBe('kill-idle');
    expect(await prompter.confirm('Terminate these 3 sessions?', false)).toBe(false);
    expect(await prompter.typedConfirm('Kill 40?', '40')).toBe(true);
    expect(await prompter.input('Note:')).toBe('the retry path leaks');
    scripted.verify();
    t.end('healthy', 0);
    const prompts = readTranscript(path).flatMap((e) =>
      e.type === 'prompt' ? [[e.question, e.answer, e.answeredBy]] : [],
    );
    expect(prompts).toEqual([
      ['Which mitigation?', 'kill-idle', 'operator'],
      ['Terminate these 3 sessions?', 'no', 'operator'],
      ['Kill 40?', 'yes', 'operator'],
      ['Note:', 'the retry path leaks', 'operator'],
    ]);
  });

  it('records nothing for a question that was never answered (Ctrl-C)', async () => {
    const path = join(tmp, 'unanswered.jsonl');
    const t = openTranscript(path, 'unanswered');
    const prompter = recordingPrompter(new ScriptedPrompter([]), t);
    await expect(prompter.confirm('Terminate?', false)).rejects.toThrow('unexpected prompt');
    t.end('interrupted', 130);
    expect(readTranscript(path).map((e) => e.type)).toEqual(['session.end']);
  });
});
