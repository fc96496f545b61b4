/**
 * The one destructive path. Every step that changes something — a session kill, a kubectl
 * change, a database setting — goes through `runAction`: preview (what exactly will be touched)
 * → approval (the operator, a typed count, --yes, --dry-run, or no terminal to ask at) → intent
 * committed to the transcript → apply → effect confirmed → outcomes recorded → measured after.
 * The executors (src/executors/) say only what to show and how to do it.
 */
import { CancelledError } from '../errors.js';
import { executorFor } from '../executors/registry.js';
import { targetOf } from '../runbook/targets.js';
import type { IntentDraft, Preview } from '../executors/types.js';
import type { InterruptGate } from '../interrupt.js';
import type { Prompter } from '../io/prompter.js';
import { byHandCommand } from '../runbook/render.js';
import type { ParameterValues, Runbook, Step, TerminateStep } from '../runbook/types.js';
import { countOutcomes, type VictimResult } from '../safety/kill.js';
import type { Selection } from '../safety/selection.js';
import type { Targets } from '../targets/set.js';
import type { Protection, Session } from '../targets/types.js';
import type { AnsweredBy, Transcript } from '../transcript/types.js';
import { TranscriptError } from '../transcript/writer.js';
import type { Capacity } from './capacity.js';
import { measureOrUnknown, type Measurement } from './measure.js';
import { bothSides, measureApplication } from './measure-app.js';
import type { Metrics } from './model.js';
import { measureSettled, type SettleRecord } from './settle.js';

/** What happened to one command of a change: run, failed, and whether its effect was seen. */
export interface CommandResult {
  command: string[];
  status: 'done' | 'failed' | 'confirmed' | 'not-confirmed';
  detail?: string;
}

/** What happened to one action: shown, asked, done, and the numbers around it. */
export interface ActionRecord {
  id: string;
  title: string;
  kind: Step['kind'];
  mode?: 'cancel' | 'terminate';
  executed: boolean;
  dryRun: boolean;
  declined: boolean;
  answeredBy?: AnsweredBy;
  victims: Session[];
  spared: { pid: number; user: string; application: string; reason: string }[];
  results: VictimResult[];
  /** A change's commands (or statement) and what became of each. */
  commands?: CommandResult[];
  /** A database setting a change moves: its value before, the one asked for, the one after. */
  setting?: { name: string; current: string; next: string; after?: string };
  /** A change that moves replicas or pool sizes: replicas × (pool_size + max_overflow) vs usable. */
  capacity?: Capacity;
  /**
   * Set when poolctl did not do the action itself: the exact command for the operator, and why
   * (a manual step, or the target it needs is not configured: `unavailable` names the flag).
   */
  command?: string;
  unavailable?: string;
  before?: Metrics;
  after?: Metrics;
  /** A kill's `after` is read `settle_after` after it; what came back meanwhile. */
  settle?: SettleRecord;
  /**
   * The action's last read of the metrics step (after the action, else before), findings and
   * gaps included: what the command's status is judged from. Not recorded as such: the
   * transcript has the numbers, and the findings are re-derived from them.
   */
  measured?: Measurement;
  stoppedEarly: boolean;
}

export interface MitigationReporter {
  /**
   * The victim table and count, before the question. `criteria` names the thresholds the
   * selection used (`kill_idle_after = 5m`), so "nothing matches" says against what.
   */
  victims(action: TerminateStep, selection: Selection, criteria: string[]): void | Promise<void>;
  /** A change's exact commands (or setting, current → new), before the question. */
  change(action: Step, lines: string[]): void | Promise<void>;
  notice(text: string): void;
  result(record: ActionRecord): void | Promise<void>;
}

export interface MitigationContext {
  runbook: Runbook;
  values: ParameterValues;
  targets: Targets;
  transcript: Transcript;
  reporter: MitigationReporter;
  /** Present when a human can answer (absent in non-interactive runs); records its own answers. */
  prompter?: Prompter;
  /** Ctrl-C during an action: aborted once, and the action stops before its next batch. */
  interrupts: InterruptGate;
  /** `interrupts.signal`, for the executors. */
  signal: AbortSignal;
  /** Parameters given with --set (and --pid): the numbers a change may set. */
  given: string[];
  yes: boolean;
  dryRun: boolean;
  protection: Protection;
  maxVictims?: number;
  /** Above this many victims the operator types the count instead of answering y. */
  confirmTypedOver: number;
  /** `--escalate`: terminate what a cancel has not ended after this many seconds. */
  escalateAfterS?: number;
  /** How long "terminated" may take before a victim is reported as still there. */
  killTimeoutMs?: number;
  /** How long a change's commands and its confirmation (a rollout) may take. */
  changeTimeoutMs?: number;
  /** `--allow-oversubscribe`: a change past the database's capacity may go ahead with --yes. */
  allowOversubscribe?: boolean;
}

/** Shows, asks, does and records one action. Declining is recorded, not thrown. */
export async function runAction(action: Step, ctx: MitigationContext): Promise<ActionRecord> {
  const record: ActionRecord = {
    id: action.id,
    title: action.title,
    kind: action.kind,
    executed: false,
    dryRun: ctx.dryRun,
    declined: false,
    victims: [],
    spared: [],
    results: [],
    stoppedEarly: false,
  };
  const executor = executorFor(action);
  const target = targetOf(action);
  if (executor.role !== 'destructive' || (target && !ctx.targets.has(target))) {
    // Done by hand: a manual step, or one whose target poolctl was not given.
    const byHand = byHandCommand(action, ctx.values, ctx.runbook.parameters, {});
    record.command = byHand.lines.join('\n');
    if (executor.role === 'destructive' && target) {
      record.unavailable = `no ${target} target: pass ${byHand.flag ?? 'its flag'} to let poolctl do it`;
    }
    ctx.transcript.append({
      type: 'manual',
      step: action.id,
      command: record.command,
      status: 'pending',
    });
    await ctx.reporter.result(record);
    return record;
  }

  const preview = await executor.preview(action, ctx, record);
  if (preview.count === 0) return finish(record, ctx);
  // No record, no act: say so now rather than after the operator has said yes.
  if (!ctx.dryRun && ctx.transcript.unrecorded !== undefined) {
    throw unrecorded(ctx.transcript, ctx.transcript.unrecorded, preview);
  }
  if (!(await approve(action, preview, ctx, record))) return finish(record, ctx);

  // Audit first (DESIGN.md, safety rule 6): the intent is on disk before anything is sent, and
  // each outcome follows as it comes, so whatever ends this run — Ctrl-C, a SIGKILL, a lost
  // server — everything touched is named in the transcript. No record, no act.
  const commit = (intent: IntentDraft) => recordIntent(intent, record, ctx);
  await ctx.interrupts.critical(async () => {
    commit(preview.intent);
    await executor.apply(action, preview, ctx, record, commit);
  });
  record.executed = true;
  // Interrupted: every outcome is recorded; do not make the operator wait for a measurement.
  if (!ctx.signal.aborted) {
    const appliedAt = Date.now();
    if (action.kind === 'terminate') {
      // Judged from a read taken once the server has settled: clients that reconnect at once are
      // back within milliseconds, unseen by a read at the kill's confirmation (src/wizard/settle.ts).
      const done = record.results.filter((r) => r.outcome === 'terminated').length;
      ({ measured: record.measured, settle: record.settle } = await measureSettled(
        ctx,
        action,
        done,
        record.before?.connections,
      ));
    } else {
      // A change frees no slot at once (a timeout applies to new sessions, a limit raised gives
      // room the application fills at its own pace): read at once, nothing to settle.
      record.measured = await measureOrUnknown(ctx, `after ${action.id}`, {
        databaseNeeded: target === 'database',
      });
    }
    // A change to the cluster is judged on the application's side too, once Prometheus has
    // scraped the pools of the pods the rollout left (the server alone would not show a leak).
    if (target === 'kubernetes') {
      const app = await measureApplication(ctx, { freshSinceMs: appliedAt, signal: ctx.signal });
      record.measured = bothSides(record.measured, app);
    }
    if (Object.keys(record.measured.metrics).length > 0) record.after = record.measured.metrics;
  }
  await finish(record, ctx);
  // Ctrl-C during the action: what was done is recorded above; now stop (exit 130).
  if (ctx.signal.aborted)
    throw new CancelledError(`interrupted during ${action.id}; its outcome is recorded`);
  return record;
}

/**
 * Writes and fsyncs what is about to be done, on whose word; throws (exit 2) when it cannot, and
 * then nothing is done.
 */
function recordIntent(intent: IntentDraft, record: ActionRecord, ctx: MitigationContext): void {
  try {
    ctx.transcript.commit({ ...intent, approvedBy: record.answeredBy });
  } catch (err) {
    if (!(err instanceof TranscriptError)) throw err;
    const reason = ctx.transcript.unrecorded ?? err.message;
    throw unrecorded(ctx.transcript, reason, describeIntent(intent), err);
  }
}

/** Count, noun and verb of an intent, for the refusal of an escalation that cannot be recorded. */
function describeIntent(intent: IntentDraft): Pick<Preview, 'count' | 'noun' | 'verb'> {
  if (intent.type === 'intent') {
    const verb = intent.mode === 'cancel' ? 'cancel the queries of' : 'terminate';
    return { count: intent.victims.length, noun: 'session', verb };
  }
  return intent.setting
    ? { count: 1, noun: 'setting', verb: 'change' }
    : { count: intent.commands?.length ?? 0, noun: 'command', verb: 'run' };
}

/** The error (exit 2) of an action refused because its intent cannot be recorded. */
function unrecorded(
  transcript: Transcript,
  reason: string,
  what: Pick<Preview, 'count' | 'noun' | 'verb'>,
  cause?: unknown,
): TranscriptError {
  return new TranscriptError(
    `cannot write transcript ${transcript.path}: ${reason}; refusing to ${what.verb} ${counted(what.count, what.noun)} without a record: nothing was changed`,
    { cause },
  );
}

function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Records the action in the transcript, whatever became of it, and shows the outcome. */
async function finish(record: ActionRecord, ctx: MitigationContext): Promise<ActionRecord> {
  // Manual actions are recorded as 'manual' events; the measurement's numbers are before/after.
  const { command, unavailable, measured, ...event } = record;
  ctx.transcript.append({ type: 'action', ...event, outcomes: countOutcomes(record.results) });
  await ctx.reporter.result(record);
  return record;
}

async function approve(
  action: Step,
  preview: Preview,
  ctx: MitigationContext,
  record: ActionRecord,
): Promise<boolean> {
  const { count, noun, verb, caution } = preview;
  const question = `${action.title}: ${verb} ${count === 1 ? `this ${noun}` : `these ${counted(count, noun)}`}?`;
  if (ctx.dryRun) {
    record.answeredBy = '--dry-run';
    const also = caution ? ` (${caution})` : '';
    ctx.reporter.notice(
      `--dry-run: would ${verb} ${counted(count, noun)}${also}; nothing was changed`,
    );
    recordDecision(ctx.transcript, action.id, question, false, '--dry-run');
    return false;
  }
  // The second question, asked only past the first: what it takes to go ahead anyway.
  const anyway = `${caution}: ${verb} ${counted(count, noun)} anyway?`;
  if (ctx.yes) {
    record.answeredBy = '--yes';
    if (caution && !ctx.allowOversubscribe) {
      record.declined = true;
      recordDecision(ctx.transcript, action.id, anyway, false, '--yes');
      ctx.reporter.notice(
        `${caution}: pass --allow-oversubscribe beside --yes to ${verb} ${counted(count, noun)} anyway; nothing was changed`,
      );
      return false;
    }
    recordDecision(ctx.transcript, action.id, question, true, '--yes');
    if (caution) recordDecision(ctx.transcript, action.id, anyway, true, '--yes');
    return true;
  }
  if (!ctx.prompter) {
    record.answeredBy = 'non-interactive';
    record.declined = true;
    recordDecision(ctx.transcript, action.id, question, false, 'non-interactive');
    const also = caution ? ` (${caution}: it also needs --allow-oversubscribe)` : '';
    ctx.reporter.notice(
      `would ${verb} ${counted(count, noun)}${also}: pass --yes to do it when not running interactively`,
    );
    return false;
  }
  // The operator's answer is recorded by the prompter itself (recordingPrompter), as this step's.
  const prompter = ctx.prompter.forStep?.(action.id) ?? ctx.prompter;
  let answer =
    count > ctx.confirmTypedOver
      ? await prompter.typedConfirm(question, String(count))
      : await prompter.confirm(question, false);
  if (answer && caution && !ctx.allowOversubscribe) answer = await prompter.confirm(anyway, false);
  record.answeredBy = 'operator';
  record.declined = !answer;
  return answer;
}

/**
 * An action that did not do what it said: a victim failed or is still there, a change's command
 * failed, or its effect was not seen. mitigate and the wizard exit 4 for it.
 */
export function actionFailed(records: ActionRecord[]): boolean {
  return records.some(
    (r) =>
      r.results.some((x) => x.outcome === 'failed' || x.outcome === 'still-there') ||
      (r.commands ?? []).some((c) => c.status === 'failed' || c.status === 'not-confirmed'),
  );
}

/** A question answered without asking (a flag, or no terminal to ask at), recorded as a prompt. */
function recordDecision(
  transcript: Transcript,
  step: string,
  question: string,
  answer: boolean,
  answeredBy: Exclude<AnsweredBy, 'operator'>,
): void {
  transcript.append({ type: 'prompt', step, question, answer: answer ? 'yes' : 'no', answeredBy });
}
