/**
 * The culprit named (issue 14, item 4) as pure logic over rows: a holder or replica that stands
 * out against the others, a rule that needs another step's rows, the cause's actions first, and
 * the lower threshold that would match when the default matches nothing.
 */
import { describe, expect, it } from 'vitest';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { resolveParameters } from '../../src/runbook/params.js';
import { parseRunbookDocument } from '../../src/runbook/schema.js';
import type { FindingRule, ThresholdHint } from '../../src/runbook/types.js';
import type { Row } from '../../src/targets/types.js';
import { evaluateAlongside, evaluateFinding, evaluateFindings } from '../../src/wizard/findings.js';
import { hintFor, roundDown } from '../../src/wizard/hints.js';

const holder = (application: string, connections: number): Row => ({
  application,
  user: 'app',
  client: '10.0.0.1',
  connections,
  share_percent: connections,
});

const standsOut: FindingRule = {
  id: 'holder-stands-out',
  severity: 'info',
  standsOut: { column: 'connections', against: 'next', ratio: 2, gap: 3 },
  message: '{application} holds {connections}, {times}× {next_application} ({next_connections})',
  suggest: [],
};

describe('a holder that stands out against the next one', () => {
  it('names a third of the server when it is twice the next, whatever its share', () => {
    const rows = [holder('worker', 10), holder('api', 33), holder('batch', 5)];
    const f = evaluateFinding(standsOut, rows, 'holders', {}, {});
    expect(f?.message).toBe('api holds 33, 3.3× worker (10)');
    expect(f?.count).toBe(1);
  });

  it('names no one when the top two are close, however full the server', () => {
    const rows = [holder('api', 50), holder('worker', 45)];
    expect(evaluateFinding(standsOut, rows, 'holders', {}, {})).toBeUndefined();
  });

  it('needs the gap too (3 against 1 is no culprit), another row, and the when conditions', () => {
    expect(
      evaluateFinding(standsOut, [holder('a', 3), holder('b', 1)], 'h', {}, {}),
    ).toBeUndefined();
    expect(evaluateFinding(standsOut, [holder('a', 90)], 'h', {}, {})).toBeUndefined();
    const quiet = { ...standsOut, when: { column: 'share_percent', op: '>=' as const, value: 50 } };
    expect(evaluateFinding(quiet, [holder('a', 40), holder('b', 2)], 'h', {}, {})).toBeUndefined();
    expect(evaluateFinding(quiet, [holder('a', 60), holder('b', 2)], 'h', {}, {})).toBeDefined();
  });

  it('against the median: one replica far above the others, not two full ones', () => {
    const rule: FindingRule = {
      id: 'outlier',
      severity: 'info',
      standsOut: { column: 'u', against: 'median', ratio: 2, gap: 25 },
      message: '{replica} {u}% vs {others_median}% of {others}',
      suggest: [],
    };
    const pools = (...u: number[]) => u.map((v, i) => ({ replica: `api-${i + 1}`, u: v }));
    expect(evaluateFinding(rule, pools(30, 100, 20, 40), 'p', {}, {})?.message).toBe(
      'api-2 100% vs 30% of 3',
    );
    expect(evaluateFinding(rule, pools(100, 100, 30), 'p', {}, {})).toBeUndefined();
    expect(evaluateFinding(rule, pools(100, 100, 100, 30), 'p', {}, {})).toBeUndefined();
    // An unknown number (NaN from Prometheus) is no row to compare with.
    expect(
      evaluateFinding(
        rule,
        [
          { replica: 'a', u: 100 },
          { replica: 'b', u: null },
        ],
        'p',
        {},
        {},
      ),
    ).toBeUndefined();
  });
});

describe('a rule that needs another step of the phase', () => {
  const rule: FindingRule = {
    id: 'leak-confirmed',
    severity: 'critical',
    when: { column: 'u', op: '>=', value: 95 },
    alongside: { step: 'idle-groups', when: { column: 'past', op: '>=', value: 3 } },
    message: '{replica} full while {alongside_application} keeps {alongside_past}',
    suggest: ['restart-app'],
  };
  const pools: Row[] = [{ replica: 'api-2', u: 100 }];

  it('waits for the phase: the step alone does not evaluate it', () => {
    expect(evaluateFindings([rule], pools, 'app-pool', {}, {})).toEqual([]);
  });

  it('fires with both sides, and only with both', () => {
    const groups: Row[] = [{ application: 'api', past: 6 }];
    const fired = evaluateAlongside([rule], pools, 'app-pool', {}, {}, () => groups);
    expect(fired.map((f) => f.message)).toEqual(['api-2 full while api keeps 6']);
    expect(evaluateAlongside([rule], pools, 'app-pool', {}, {}, () => undefined)).toEqual([]);
    expect(
      evaluateAlongside([rule], pools, 'app-pool', {}, {}, () => [{ application: 'x', past: 1 }]),
    ).toEqual([]);
  });
});

describe('the lower threshold that would match', () => {
  const runbook = defaultRunbookFor('postgres');
  const values = resolveParameters(runbook.parameters, {}, runbook.id);
  const longHint: ThresholdHint = {
    param: 'cancel_long_after',
    age: 'running_s',
    what: 'queries running',
    by: 'application',
    action: 'cancel-long',
  };
  const running = (application: string, s: number): Row => ({ application, running_s: s });

  it('43 pgbench queries running past 30 s, none past 2m: the count and the exact flag', () => {
    const rows = Array.from({ length: 43 }, (_, i) => running('pgbench', 31 + i));
    const f = hintFor(longHint, rows, values, 'long-running');
    expect(f?.message).toBe(
      '43 pgbench queries running > 30s, none past cancel_long_after=2m: `--set cancel_long_after=30s` lets cancel-long match them',
    );
    expect(f?.count).toBe(43);
  });

  it('several applications are counted each; nothing when the default already matches', () => {
    const rows = [running('pgbench', 50), running('api', 40), running('pgbench', 95)];
    expect(hintFor(longHint, rows, values, 'l')?.message).toMatch(
      /^3 \(2 pgbench, 1 api\) queries running > 30s/,
    );
    expect(hintFor(longHint, [...rows, running('api', 121)], values, 'l')).toBeUndefined();
    expect(hintFor(longHint, [], values, 'l')).toBeUndefined();
  });

  it('groups: the largest sets the value, every session of a group at least that old is counted', () => {
    const hint: ThresholdHint = {
      param: 'kill_idle_after',
      age: 'newest_s',
      oldest: 'oldest_s',
      sessions: 'sessions',
      when: { column: 'state', op: '==', value: 'idle' },
      what: 'sessions idle',
      by: 'application',
      action: 'kill-idle',
    };
    const group = (
      application: string,
      sessions: number,
      newest: number,
      oldest: number,
      state = 'idle',
    ) => ({
      application,
      state,
      sessions,
      newest_s: newest,
      oldest_s: oldest,
    });
    const rows = [
      group('api', 25, 47.5, 200),
      group('worker', 4, 80, 90),
      group('batch', 3, 12, 30),
      group('api', 9, 0.2, 0.4),
      group('api', 50, 100, 100, 'idle in transaction'),
    ];
    expect(hintFor(hint, rows, values, 'idle-groups')?.message).toBe(
      '29 (25 api, 4 worker) sessions idle > 45s, none past kill_idle_after=5m: `--set kill_idle_after=45s` lets kill-idle match them',
    );
    // A group whose oldest is past the default: kill-idle has victims, no hint.
    expect(hintFor(hint, [...rows, group('x', 1, 10, 301)], values, 'i')).toBeUndefined();
    // Only a pool at work (sub-second idle): no hint.
    expect(hintFor(hint, [group('api', 9, 0.2, 0.4)], values, 'i')).toBeUndefined();
  });

  it('rounds down to a value an operator types', () => {
    expect([0.5, 1, 7, 31, 47.5, 119, 301, 9000].map(roundDown)).toEqual([
      1, 1, 5, 30, 45, 90, 300, 7200,
    ]);
  });
});

describe('the runbook schema checks the new rules', () => {
  const doc = (findings: unknown[], hints?: unknown[]) => ({
    id: 'postgres/x',
    title: 'T',
    engine: 'postgres',
    parameters: { kill_idle_after: { type: 'duration', default: '5m', description: 'd' } },
    diagnose: [
      { id: 'a', title: 'A', why: 'W', kind: 'manual', commands: [['true']], findings, hints },
      { id: 'b', title: 'B', why: 'W', kind: 'manual', commands: [['true']] },
    ],
    actions: [{ id: 'kill-idle', title: 'K', why: 'W', kind: 'manual', commands: [['true']] }],
    verify: [{ id: 'v', title: 'V', why: 'W', kind: 'manual', commands: [['true']] }],
  });
  const issues = (d: unknown) =>
    parseRunbookDocument(d).issues.map((i) => `${i.path.join('/')}: ${i.message}`);
  const rule = { id: 'f', severity: 'info', message: 'm' };

  it('accepts standsOut, alongside another step of the phase, leads and hints', () => {
    expect(
      issues(
        doc(
          [
            { ...rule, standsOut: { column: 'c', against: 'next', ratio: 2 }, leads: true },
            {
              ...rule,
              id: 'g',
              alongside: { step: 'b', when: { column: 'c', op: '>', value: 1 } },
            },
          ],
          [{ param: 'kill_idle_after', age: 'idle_s', what: 'sessions idle', action: 'kill-idle' }],
        ),
      ),
    ).toEqual([]);
  });

  it('names what is wrong: an unknown step, a ratio below 1, a hint on no duration or action', () => {
    expect(
      issues(
        doc(
          [
            { ...rule, standsOut: { column: 'c', against: 'next', ratio: 0.5 } },
            {
              ...rule,
              id: 'g',
              alongside: { step: 'zz', when: { column: 'c', op: '>', value: 1 } },
            },
          ],
          [{ param: 'nope', age: 'idle_s', what: 'w', action: 'nothing' }],
        ),
      ),
    ).toEqual(['diagnose/0/findings/0/standsOut/ratio: expected a ratio of at least 1 (got 0.5)']);
    expect(
      issues(
        doc(
          [
            {
              ...rule,
              id: 'g',
              alongside: { step: 'zz', when: { column: 'c', op: '>', value: 1 } },
            },
          ],
          [{ param: 'nope', age: 'idle_s', what: 'w', action: 'nothing' }],
        ),
      ),
    ).toEqual([
      'diagnose/0/hints/0/param: "nope" is not a declared duration parameter',
      'diagnose/0/hints/0/action: "nothing" is not a step in actions (actions: kill-idle)',
      'diagnose/0/findings/0/alongside/step: "zz" is not another step of diagnose (steps: b)',
    ]);
  });
});
