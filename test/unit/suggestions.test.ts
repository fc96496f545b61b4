import { describe, expect, it } from 'vitest';
import { parseCommonOptions } from '../../src/commands/common.js';
import { suggestionsFor } from '../../src/commands/diagnose.js';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { resolveParameters } from '../../src/runbook/params.js';
import type { PhaseResult } from '../../src/wizard/model.js';

const suggesting = (id: string): PhaseResult => ({
  steps: [],
  findings: [{ id: 'f', severity: 'warning', message: 'm', step: 's', suggest: [id], count: 1 }],
  metrics: {},
  stoppedEarly: false,
  unmeasured: [],
});

describe('the command a suggestion repeats', () => {
  it('a kubectl change carries the cluster flags as given and the --set values its commands use', () => {
    const runbook = defaultRunbookFor('postgres');
    const opts = parseCommonOptions({
      pg: 'postgres://oncall@db:5432/app',
      kubeContext: 'prod eu',
      namespace: 'shop',
      set: ['replicas=6', 'kill_idle_after=1m'],
    });
    const values = resolveParameters(runbook.parameters, { replicas: '6' }, runbook.id);
    const [suggestion] = suggestionsFor(runbook, values, suggesting('scale-app'), opts);
    expect(suggestion!.command).toBe(
      "poolctl mitigate --action scale-app --pg 'postgres://oncall@db:5432/app' --kube-context 'prod eu' --namespace shop --set replicas=6 --yes",
    );
  });

  it('a kill carries no cluster flags', () => {
    const runbook = defaultRunbookFor('postgres');
    const opts = parseCommonOptions({ pg: 'postgres://oncall@db:5432/app', kubeContext: 'prod' });
    const values = resolveParameters(runbook.parameters, {}, runbook.id);
    const [suggestion] = suggestionsFor(runbook, values, suggesting('kill-idle'), opts);
    expect(suggestion!.command).not.toContain('--kube-context');
  });
});
