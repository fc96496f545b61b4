import { describe, expect, it } from 'vitest';
import { parseCommonOptions } from '../../src/commands/common.js';
import { suggestionsFor } from '../../src/commands/diagnose.js';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { resolveParameters } from '../../src/runbook/params.js';
import type { Finding, PhaseResult } from '../../src/wizard/model.js';
import { rankActions } from '../../src/wizard/rank.js';
import { sidesOf } from '../../src/wizard/sides.js';

const runbook = defaultRunbookFor('postgres');
const finding = (
  id: string,
  step: string,
  severity: Finding['severity'],
  suggest: string[],
  count = 1,
  leads = false,
): Finding => ({
  id,
  severity,
  message: id,
  step,
  suggest,
  count,
  ...(leads ? { leads } : {}),
});
const rank = (...findings: Finding[]) => rankActions(runbook, findings);

// The bundled runbook's findings, on the steps that raise them (the side follows the step).
const serverFull = finding('pool-critical', 'utilization', 'critical', []);
const appFull = finding('app-pool-critical', 'app-pool', 'critical', [
  'restart-app',
  'rollback-app',
]);
const idleSuspects = (count: number) =>
  finding('idle-leak-suspects', 'idle-leaks', 'warning', ['kill-idle'], count);
const leakSignature = finding(
  'leak-signature',
  'idle-groups',
  'warning',
  ['restart-app', 'rollback-app'],
  1,
  true,
);
const trendLeak = finding('trend-leak', 'app-pool-trend', 'warning', ['restart-app'], 1, true);
const trendGradual = finding('trend-gradual', 'app-pool-trend', 'info', ['scale-app']);
const idleDominates = finding('idle-dominates', 'utilization', 'info', ['kill-idle']);
const stillFull = finding('still-full', 'verify-utilization', 'critical', [
  'kill-idle',
  'kill-idle-in-tx',
]);
const appStillFull = finding('app-pool-still-full', 'verify-app-pool', 'critical', ['restart-app']);

describe('rule 1, severity first: an action only info or warning findings suggest never ranks above a critical finding’s', () => {
  it("an info finding's scale-app stays behind a critical finding's kills, the application's side full or not", () => {
    expect(rank(trendGradual, stillFull)).toEqual(['kill-idle', 'kill-idle-in-tx', 'scale-app']);
    expect(rank(trendGradual, stillFull, appStillFull)).toEqual([
      'restart-app',
      'kill-idle',
      'kill-idle-in-tx',
      'scale-app',
    ]);
  });

  it('a warning that names a leak does not jump ahead of a critical finding’s kills', () => {
    expect(rank(trendLeak, stillFull)).toEqual(['kill-idle', 'kill-idle-in-tx', 'restart-app']);
    expect(rank(leakSignature, serverFull, stillFull)).toEqual([
      'kill-idle',
      'kill-idle-in-tx',
      'restart-app',
      'rollback-app',
    ]);
  });

  it('an action suggested by a warning and a critical finding takes the critical place', () => {
    const rollback = finding('x', 'verify-app-pool', 'critical', ['rollback-app']);
    expect(rank(leakSignature, stillFull, rollback)).toEqual([
      'rollback-app',
      'kill-idle',
      'kill-idle-in-tx',
      'restart-app',
    ]);
  });
});

describe('rule 2, within one severity the leak evidence puts the restart and the rollback first', () => {
  it('the leak signature behind 1 group beats idle suspects behind 40 sessions, the server full', () => {
    expect(rank(serverFull, idleSuspects(40), leakSignature)).toEqual([
      'restart-app',
      'rollback-app',
      'kill-idle',
    ]);
  });

  it('a pool that fills like a leak (trend-leak) puts the restart before kills of its severity', () => {
    expect(rank(serverFull, idleSuspects(40), trendLeak)).toEqual(['restart-app', 'kill-idle']);
  });

  it('a pool at its limit is leak evidence without leads: in verify, the restart before the kills', () => {
    expect(rank(stillFull, appStillFull)).toEqual(['restart-app', 'kill-idle', 'kill-idle-in-tx']);
  });

  it("the same warning without leads is not evidence: the server alone full, the server's kill first", () => {
    const contended = finding('app-pool-contended', 'app-pool', 'warning', ['restart-app'], 3);
    expect(rank(serverFull, contended, idleSuspects(2))).toEqual(['kill-idle', 'restart-app']);
  });
});

describe("rule 3, the server alone exhausted: the server's actions first", () => {
  it("an info finding's scale-app after an info finding's kill, whatever the order found", () => {
    expect(rank(serverFull, trendGradual, idleDominates)).toEqual(['kill-idle', 'scale-app']);
  });

  it('without a full server the findings keep their own order at equal counts', () => {
    expect(rank(trendGradual, idleDominates)).toEqual(['scale-app', 'kill-idle']);
  });
});

describe('both sides full: the order and the explanation say the same thing', () => {
  it('restart and rollback first, then the kills; the text says restart first, then free the server', () => {
    const findings = [serverFull, idleSuspects(40), appFull, leakSignature];
    expect(rankActions(runbook, findings)).toEqual(['restart-app', 'rollback-app', 'kill-idle']);
    const sides = sidesOf(runbook, findings, { utilization_percent: 98 }, true);
    expect(sides.side).toBe('both');
    const text = sides.explanation;
    expect(text).toMatch(/Restart the replica whose pool is full first/);
    expect(text.indexOf('Restart the replica')).toBeLessThan(
      text.indexOf('Then free what the server still holds'),
    );
  });
});

describe('rule 4 and 5, ties: the most sessions, then the findings’ order', () => {
  it('the finding behind the most sessions first, then the order they were found in', () => {
    const long = finding(
      'long-queries',
      'long-running',
      'warning',
      ['cancel-long', 'kill-long'],
      9,
    );
    const inTx = finding(
      'idle-in-transaction',
      'idle-in-transaction',
      'warning',
      ['kill-idle-in-tx'],
      9,
    );
    expect(rank(inTx, idleSuspects(2), long)).toEqual([
      'kill-idle-in-tx',
      'cancel-long',
      'kill-long',
      'kill-idle',
    ]);
    expect(rank(long, idleSuspects(2), inTx)).toEqual([
      'cancel-long',
      'kill-long',
      'kill-idle-in-tx',
      'kill-idle',
    ]);
  });

  it('each action once, at its best place; the same findings always give the same list', () => {
    const findings = [idleSuspects(3), leakSignature, trendLeak, serverFull, trendGradual];
    const first = rankActions(runbook, findings);
    expect(first).toEqual(['restart-app', 'rollback-app', 'kill-idle', 'scale-app']);
    expect(rankActions(runbook, [...findings])).toEqual(first);
  });
});

describe('every place shows the one order: the suggestions of diagnose, mitigate and the JSON', () => {
  const values = resolveParameters(runbook.parameters, {}, runbook.id);
  const opts = parseCommonOptions({ pg: 'postgres://oncall@db/app', kubeContext: 'prod' });
  const result = (findings: Finding[]): PhaseResult => ({
    steps: [],
    findings,
    metrics: { utilization_percent: 98, app_pool_utilization_percent: 100 },
    stoppedEarly: false,
    unmeasured: [],
  });

  it('suggestionsFor is rankActions, each with its command', () => {
    const findings = [serverFull, idleSuspects(40), trendGradual, appFull];
    const suggested = suggestionsFor(runbook, values, result(findings), opts);
    expect(suggested.map((s) => s.id)).toEqual(rankActions(runbook, findings));
    expect(suggested.map((s) => s.id)).toEqual([
      'restart-app',
      'rollback-app',
      'kill-idle',
      'scale-app',
    ]);
  });
});
