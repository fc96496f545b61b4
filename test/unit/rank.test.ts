import { describe, expect, it } from 'vitest';
import { parseCommonOptions } from '../../src/commands/common.js';
import { suggestionsFor } from '../../src/commands/diagnose.js';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { resolveParameters } from '../../src/runbook/params.js';
import type { Finding, PhaseResult } from '../../src/wizard/model.js';

const finding = (
  id: string,
  step: string,
  severity: Finding['severity'],
  suggest: string[],
  count = 1,
): Finding => ({
  id,
  severity,
  message: id,
  step,
  suggest,
  count,
});
const result = (findings: Finding[]): PhaseResult => ({
  steps: [],
  findings,
  metrics: { utilization_percent: 98, app_pool_utilization_percent: 100 },
  stoppedEarly: false,
  unmeasured: [],
});

describe('the offered list, best first: a leak is fixed in the cluster before sessions are killed', () => {
  const runbook = defaultRunbookFor('postgres');
  const values = resolveParameters(runbook.parameters, {}, runbook.id);
  const opts = parseCommonOptions({ pg: 'postgres://oncall@db/app', kubeContext: 'prod' });
  const ids = (findings: Finding[]) =>
    suggestionsFor(runbook, values, result(findings), opts).map((s) => s.id);
  // The server is critical behind 40 idle sessions, the application's pool behind one replica:
  // by count alone the kill would come first.
  const server = finding(
    'pool-critical',
    'utilization',
    'critical',
    ['kill-idle', 'kill-idle-in-tx'],
    40,
  );
  const app = finding(
    'app-pool-critical',
    'app-pool',
    'critical',
    ['restart-app', 'rollback-app'],
    1,
  );

  it('both sides exhausted: restart and rollback first, then the kills', () => {
    expect(ids([server, app])).toEqual([
      'restart-app',
      'rollback-app',
      'kill-idle',
      'kill-idle-in-tx',
    ]);
  });

  it('a pool that fills like a leak puts the restart first even when only the server is critical', () => {
    const leak = finding('trend-leak', 'app-pool-trend', 'warning', ['restart-app']);
    expect(ids([server, leak])).toEqual(['restart-app', 'kill-idle', 'kill-idle-in-tx']);
  });

  it("the server alone: the findings' order stands, the kills first", () => {
    const gradual = finding('trend-gradual', 'app-pool-trend', 'info', ['scale-app']);
    expect(ids([server, gradual])).toEqual(['kill-idle', 'kill-idle-in-tx', 'scale-app']);
  });
});
