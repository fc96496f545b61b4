import type { Step, StepKind } from '../runbook/types.js';
import { changeExecutor } from './change.js';
import { killExecutor } from './kill.js';
import { kubectlExecutor } from './kubectl.js';
import { promqlExecutor } from './promql.js';
import { queryExecutor } from './query.js';
import type { Executor } from './types.js';

/**
 * One executor per step kind. The mapped type makes a step kind without an executor a compile
 * error, and the loader refuses a runbook whose step kind has none (test/unit/executors.test.ts).
 */
export const EXECUTORS: { [K in StepKind]: Executor<Extract<Step, { kind: K }>> } = {
  query: queryExecutor,
  promql: promqlExecutor,
  kubectl: kubectlExecutor,
  terminate: killExecutor,
  change: changeExecutor,
  manual: { role: 'manual' },
};

export function executorFor<S extends Step>(step: S): Executor<S> {
  return EXECUTORS[step.kind] as Executor<S>;
}
