import { CancelledError } from '../errors.js';
import { critical, interruptRequested } from '../interrupt.js';
import type { Prompter } from '../io/prompter.js';
import { bindParameters, renderTemplate } from '../runbook/params.js';
import { byHandCommand } from '../runbook/render.js';
import type { ParameterValues, Runbook, Step, TerminateStep } from '../runbook/types.js';
import { countOutcomes, executeKill, type VictimResult } from '../safety/kill.js';
import { selectVictims, type Selection } from '../safety/selection.js';
import type { DatabaseTarget, Protection, Session } from '../targets/types.js';
import type { AnsweredBy, Transcript } from '../transcript/types.js';
import { TranscriptError } from '../transcript/writer.js';
import { measureOrUnknown, measureServer, type Measurement } from './measure.js';
import type { Metrics } from './model.js';
import { refuseBlindKill } from './visibility.js';

/** What happened to one action: shown, asked, done, and the numbers around it. */
export interface ActionRecord {
  id: string;
  title: string;
  kind: Step['kind'];
  mode?: 'cancel' | 'terminate';
  executed: boolean;
  dryRun: boolean;
  declined: boolean;
  answeredBy?: 'operator' | '--yes' | '--dry-run' | 'non-interactive';
  victims: Session[];
  spared: { pid: number; user: string; application: string; reason: string }[];
  results: VictimResult[];
  /** For change and manual actions: the exact command for the operator. */
  command?: string;
  before?: Metrics;
  after?: Metrics;
  /**
   * The action's last read of the metrics step (after the kill, else before), findings and gaps
   * included: what the command's status is judged from. Not recorded as such: the transcript
   * has the numbers, and the findings are re-derived from them.
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
  notice(text: string): void;
  result(record: ActionRecord): void | Promise<void>;
}

export interface MitigationContext {
  runbook: Runbook;
  values: ParameterValues;
  target: DatabaseTarget;
  transcript: Transcript;
  reporter: MitigationReporter;
  /** Present when a human can answer (absent in non-interactive runs); records its own answers. */
  prompter?: Prompter;
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
  if (action.kind !== 'terminate') {
    // Changes through kubectl and configuration are done by hand until their adapters exist.
    record.command = byHandCommand(action, ctx.values, ctx.runbook.parameters).lines.join('\n');
    ctx.transcript.append({
      type: 'manual',
      step: action.id,
      command: record.command,
      status: 'pending',
    });
    await ctx.reporter.result(record);
    return record;
  }

  record.mode = action.mode;
  const params = bindParameters(action.params, ctx.values);
  // One read gives both the before-numbers and the visibility check: every path to a kill
  // (--action, the wizard's offer) refuses one it cannot see to choose.
  const before = await measureServer(ctx);
  refuseBlindKill(action.id, before);
  record.before = before.metrics;
  record.measured = before;
  const candidates = await ctx.target.candidates({ sql: action.sql, params });
  const selection = selectVictims(candidates, {
    ownSessionId: ctx.target.info.ownSessionId,
    protection: ctx.protection,
    maxVictims: ctx.maxVictims,
  });
  record.victims = selection.victims;
  record.spared = selection.spared.map(({ session, reason }) => ({
    pid: session.pid,
    user: session.user,
    application: session.application,
    reason,
  }));
  const criteria = action.params.map(
    (name) => `${name} = ${renderTemplate(`{${name}}`, ctx.values, ctx.runbook.parameters)}`,
  );
  await ctx.reporter.victims(action, selection, criteria);
  if (selection.victims.length === 0) return finish(record, ctx);
  // No record, no kill: say so now rather than after the operator has said yes.
  if (!ctx.dryRun && ctx.transcript.unrecorded !== undefined) {
    throw unrecordedKill(ctx.transcript, ctx.transcript.unrecorded, action.mode, selection.victims);
  }
  if (!(await approve(action, selection.victims.length, ctx, record))) return finish(record, ctx);

  // Audit first (DESIGN.md, safety rule 6): the intent is on disk before the kill statement is
  // sent, and each batch's outcomes follow as they come, so whatever ends this run — Ctrl-C, a
  // SIGKILL, a lost server — every session gone is named in the transcript. No record, no kill.
  const report = await critical(async () => {
    recordIntent(action, selection.victims, action.mode, record, ctx);
    return executeKill({
      target: ctx.target,
      sql: action.sql,
      params,
      mode: action.mode,
      victims: selection.victims,
      protection: ctx.protection,
      timeoutMs:
        action.mode === 'cancel' && ctx.escalateAfterS !== undefined
          ? ctx.escalateAfterS * 1000
          : ctx.killTimeoutMs,
      interrupted: interruptRequested,
      onResults: recordOutcomes(action, action.mode, ctx),
    });
  });
  record.executed = true;
  record.results = report.results;
  record.stoppedEarly = report.stoppedEarly;

  if (action.mode === 'cancel' && ctx.escalateAfterS !== undefined && !interruptRequested()) {
    await escalate(action, params, record, ctx);
  }
  // Interrupted: every outcome is recorded; do not make the operator wait for a measurement.
  if (!interruptRequested()) {
    record.measured = await measureOrUnknown(ctx, 'after the kill');
    if (Object.keys(record.measured.metrics).length > 0) record.after = record.measured.metrics;
  }
  await finish(record, ctx);
  // Ctrl-C during the kill: what was done is recorded above; now stop (exit 130).
  if (interruptRequested())
    throw new CancelledError('interrupted during the kill; its outcome is recorded');
  return record;
}

/**
 * Writes and fsyncs what is about to be done to whom, on whose word; throws (exit 2) when it
 * cannot, and then nothing is done. A session is named by its id and the token that tells it
 * apart from a later one with the same id (PostgreSQL backend_start, MySQL user@host).
 */
function recordIntent(
  action: TerminateStep,
  victims: Session[],
  mode: 'cancel' | 'terminate',
  record: ActionRecord,
  ctx: MitigationContext,
): void {
  try {
    ctx.transcript.commit({
      type: 'intent',
      step: action.id,
      title: action.title,
      mode,
      ...(mode !== action.mode ? { escalation: true } : {}),
      approvedBy: record.answeredBy,
      victims,
    });
  } catch (err) {
    if (!(err instanceof TranscriptError)) throw err;
    throw unrecordedKill(
      ctx.transcript,
      ctx.transcript.unrecorded ?? err.message,
      mode,
      victims,
      err,
    );
  }
}

/** The error (exit 2) of a kill refused because its intent cannot be recorded. */
function unrecordedKill(
  transcript: Transcript,
  reason: string,
  mode: 'cancel' | 'terminate',
  victims: Session[],
  cause?: unknown,
): TranscriptError {
  const verb = mode === 'cancel' ? 'cancel the queries of' : 'terminate';
  const n = victims.length;
  return new TranscriptError(
    `cannot write transcript ${transcript.path}: ${reason}; refusing to ${verb} ${n} session${n === 1 ? '' : 's'} without a record: nothing was changed`,
    { cause },
  );
}

/** Appends each batch's outcomes as the kill reports them. */
function recordOutcomes(
  action: TerminateStep,
  mode: 'cancel' | 'terminate',
  ctx: MitigationContext,
): (results: VictimResult[]) => void {
  return (results) => {
    if (results.length > 0)
      ctx.transcript.append({ type: 'outcome', step: action.id, mode, results });
  };
}

/** Records the action in the transcript, whatever became of it, and shows the outcome. */
async function finish(record: ActionRecord, ctx: MitigationContext): Promise<ActionRecord> {
  // Manual actions are recorded as 'manual' events; the measurement's numbers are before/after.
  const { command, measured, ...event } = record;
  ctx.transcript.append({ type: 'action', ...event, outcomes: countOutcomes(record.results) });
  await ctx.reporter.result(record);
  return record;
}

/** Cancel first; terminate only the victims whose statement is still running after the grace. */
async function escalate(
  action: TerminateStep,
  params: unknown[],
  record: ActionRecord,
  ctx: MitigationContext,
) {
  const stuck = new Set(
    record.results.filter((r) => r.outcome === 'still-there').map((r) => r.pid),
  );
  if (stuck.size === 0) return;
  const victims = record.victims.filter((s) => stuck.has(s.pid));
  ctx.reporter.notice(
    `${victims.length} still running after the cancel: terminating them (--escalate)`,
  );
  const report = await critical(async () => {
    recordIntent(action, victims, 'terminate', record, ctx);
    return executeKill({
      target: ctx.target,
      sql: action.sql,
      params,
      mode: 'terminate',
      victims,
      protection: ctx.protection,
      timeoutMs: ctx.killTimeoutMs,
      interrupted: interruptRequested,
      onResults: recordOutcomes(action, 'terminate', ctx),
    });
  });
  const escalated = new Map(report.results.map((r) => [r.pid, r]));
  record.results = record.results.map((r) => {
    const e = escalated.get(r.pid);
    return e ? { ...e, reason: e.reason ?? `cancel had no effect in ${ctx.escalateAfterS}s` } : r;
  });
}

async function approve(
  action: TerminateStep,
  count: number,
  ctx: MitigationContext,
  record: ActionRecord,
): Promise<boolean> {
  const verb = action.mode === 'cancel' ? 'cancel the queries of' : 'terminate';
  const question = `${action.title}: ${verb} these ${count} session${count === 1 ? '' : 's'}?`;
  if (ctx.dryRun) {
    record.answeredBy = '--dry-run';
    ctx.reporter.notice(
      `--dry-run: would ${verb} ${count} session${count === 1 ? '' : 's'}; nothing was changed`,
    );
    recordDecision(ctx.transcript, question, false, '--dry-run');
    return false;
  }
  if (ctx.yes) {
    record.answeredBy = '--yes';
    recordDecision(ctx.transcript, question, true, '--yes');
    return true;
  }
  if (!ctx.prompter) {
    record.answeredBy = 'non-interactive';
    record.declined = true;
    recordDecision(ctx.transcript, question, false, 'non-interactive');
    ctx.reporter.notice(
      `would ${verb} ${count} session${count === 1 ? '' : 's'}: pass --yes to do it when not running interactively`,
    );
    return false;
  }
  // The operator's answer is recorded by the prompter itself (recordingPrompter).
  const answer =
    count > ctx.confirmTypedOver
      ? await ctx.prompter.typedConfirm(question, String(count))
      : await ctx.prompter.confirm(question, false);
  record.answeredBy = 'operator';
  record.declined = !answer;
  return answer;
}

/** A question answered without asking (a flag, or no terminal to ask at), recorded as a prompt. */
function recordDecision(
  transcript: Transcript,
  question: string,
  answer: boolean,
  answeredBy: Exclude<AnsweredBy, 'operator'>,
): void {
  transcript.append({ type: 'prompt', question, answer: answer ? 'yes' : 'no', answeredBy });
}
