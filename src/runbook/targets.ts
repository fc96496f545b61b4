/**
 * Which kind of target a step needs. Kept out of `types.ts` (type-only) so that the phase runner,
 * the executors and the by-hand rendering share one answer.
 */
import type { Step, TargetKind } from './types.js';

export type { TargetKind } from './types.js';

/** The target a step runs against; `null` for a manual step, which poolctl never runs. */
export function targetOf(step: Step): TargetKind | null {
  switch (step.kind) {
    case 'query':
    case 'terminate':
      return 'database';
    case 'promql':
      return 'prometheus';
    case 'kubectl':
      return 'kubernetes';
    case 'change':
      return step.target;
    case 'manual':
      return null;
  }
}
