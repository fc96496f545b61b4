/**
 * A step executor does one step kind. Read executors return rows, which the phase runner judges
 * with the step's finding rules. Destructive executors go through the one destructive path
 * (src/wizard/mitigation.ts): preview → approval → intent committed → apply → effect confirmed →
 * outcomes recorded; they only say what to show, what to record, and how to do it.
 */
import type { ParameterValues, Runbook, Step } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import type { Row } from '../targets/types.js';
import type { ChangeIntentEvent, IntentEvent } from '../transcript/types.js';
import type { ActionRecord, MitigationContext } from '../wizard/mitigation.js';
import type { StepOutcome } from '../wizard/model.js';

export interface ReadContext {
  runbook: Runbook;
  values: ParameterValues;
  targets: Targets;
  /** The phase's steps that ran before this one (a rollout is set against the trend's rows). */
  earlier?: readonly StepOutcome[];
}

export interface ReadExecutor<S extends Step> {
  role: 'read';
  /** The step's rows; throws to fail the step (a TargetError ends the run: the database is gone). */
  read(step: S, ctx: ReadContext): Promise<Row[]>;
}

/** What a destructive step would do, shown before the question and committed before the act. */
export interface Preview {
  /** How many things it touches, and what they are: 3 sessions, 1 command, 1 setting. */
  count: number;
  noun: string;
  /** "terminate", "cancel the queries of", "run", "change". */
  verb: string;
  /** The intent, written and fsynced before `apply` (the path adds who approved it). */
  intent: IntentDraft;
  /**
   * Why the step needs a second, explicit confirmation (`6 × (20 + 10) = 180 > 37 usable:
   * oversubscribes the database`); without a terminal, --allow-oversubscribe beside --yes.
   */
  caution?: string;
}

/** An intent event without the approver, which the approval adds. */
export type IntentDraft = Omit<IntentEvent, 'approvedBy'> | Omit<ChangeIntentEvent, 'approvedBy'>;

export interface DestructiveExecutor<S extends Step> {
  role: 'destructive';
  /**
   * Reads what the step would touch and shows it through the reporter; changes nothing. A count
   * of 0 ends the action there ("nothing to do").
   */
  preview(step: S, ctx: MitigationContext, record: ActionRecord): Promise<Preview>;
  /**
   * Does it, inside the critical section, after the intent is on disk: records each outcome as
   * it comes (ctx.transcript.append) and into `record`, and confirms the effect. `commit`
   * writes a further intent (an escalation) under the same approval.
   */
  apply(
    step: S,
    preview: Preview,
    ctx: MitigationContext,
    record: ActionRecord,
    commit: (intent: IntentDraft) => void,
  ): Promise<void>;
}

/** Steps poolctl never runs: the operator does them, and says so at a prompt. */
export interface ManualExecutor {
  role: 'manual';
}

export type Executor<S extends Step> = ReadExecutor<S> | DestructiveExecutor<S> | ManualExecutor;
