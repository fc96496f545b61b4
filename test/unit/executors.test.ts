import { describe, expect, it } from 'vitest';
import { EXECUTORS } from '../../src/executors/registry.js';
import { PHASE_KINDS, STEP_KINDS } from '../../src/runbook/schema.js';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';

describe('the step-executor registry', () => {
  it('has exactly one executor per step kind the runbook format accepts', () => {
    expect(Object.keys(EXECUTORS).sort()).toEqual([...STEP_KINDS].sort());
  });

  it('the phases validation admits each kind to agree with what its executor does', () => {
    for (const kind of [...PHASE_KINDS.diagnose, ...PHASE_KINDS.verify])
      expect([kind, EXECUTORS[kind].role]).not.toEqual([kind, 'destructive']);
    for (const kind of PHASE_KINDS.actions)
      expect([kind, EXECUTORS[kind].role]).not.toEqual([kind, 'read']);
  });

  it('read-only phases hold only steps with a read or manual executor; actions never a read one', () => {
    for (const engine of ['postgres', 'mysql'] as const) {
      const runbook = defaultRunbookFor(engine);
      for (const step of [...runbook.diagnose, ...runbook.verify])
        expect([step.id, EXECUTORS[step.kind].role]).not.toEqual([step.id, 'destructive']);
      for (const step of runbook.actions)
        expect([step.id, EXECUTORS[step.kind].role]).not.toEqual([step.id, 'read']);
    }
  });
});
