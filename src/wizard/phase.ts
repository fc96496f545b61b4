import { executorFor } from '../executors/registry.js';
import { targetOf } from '../runbook/targets.js';
import { byHandCommand } from '../runbook/render.js';
import type { ParameterValues, Runbook, Step } from '../runbook/types.js';
import type { Prompter } from '../io/prompter.js';
import type { Targets } from '../targets/set.js';
import type { Row } from '../targets/types.js';
import type { Transcript } from '../transcript/types.js';
import {
  asSecondOpinion,
  isServerSide,
  poolHolderFinding,
  refusedFinding,
  serverMeasured,
} from './exporter.js';
import { evaluateAlongside, evaluateFindings } from './findings.js';
import { thresholdHints } from './hints.js';
import {
  headlineGaps,
  notMeasured,
  type Finding,
  type Metrics,
  type PhaseResult,
  type StepOutcome,
} from './model.js';

/** What a phase reports while it runs: the human renderer prints, the JSON mode stays quiet. */
export interface PhaseReporter {
  stepStarted(step: Step): void;
  stepFinished(outcome: StepOutcome): void | Promise<void>;
  /** Called after a metrics step, so the headline appears before the rest runs. */
  metrics(metrics: Metrics): void | Promise<void>;
}

/** The JSON mode's reporter: nothing on the terminal while the steps run. */
export const quietReporter: PhaseReporter = { stepStarted() {}, stepFinished() {}, metrics() {} };

export interface PhaseContext {
  runbook: Runbook;
  phase: 'diagnose' | 'verify' | 'prevent';
  values: ParameterValues;
  targets: Targets;
  transcript: Transcript;
  reporter: PhaseReporter;
  /** Given with `--step`: pause after every step for the operator. */
  stepPrompter?: Prompter;
  /**
   * The database refused poolctl (the refusal's one line): its steps fail with it without being
   * tried again, and the exporter's steps (`side: server`) speak for the server.
   */
  databaseRefused?: string;
  now?: () => number;
}

/** How many rows of a step go into the transcript (the JSON document carries all of them). */
const TRANSCRIPT_ROWS = 50;

/** Runs the read-only steps of a phase straight through, each reported as it completes. */
export async function runPhase(ctx: PhaseContext): Promise<PhaseResult> {
  // Straight through, the steps read the server as of one moment (DatabaseTarget.readTogether).
  // Not with --step: a transaction must not stay open while the operator thinks.
  const database = ctx.targets.connectedDatabase;
  if (!ctx.stepPrompter && database?.readTogether) {
    return database.readTogether(() => runSteps(ctx));
  }
  return runSteps(ctx);
}

async function runSteps(ctx: PhaseContext): Promise<PhaseResult> {
  const steps = ctx.runbook[ctx.phase];
  const outcomes: StepOutcome[] = [];
  const findings: Finding[] = [];
  const metrics: Metrics = {};
  let stoppedEarly = false;

  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    // Without Prometheus an exporter's view is simply not there: no step to do by hand, since
    // poolctl reads the server itself (and says so when it cannot).
    if (stoppedEarly || (isServerSide(step) && !ctx.targets.has('prometheus'))) {
      recordOutcome(ctx, outcomes, findings, skipped(step));
      continue;
    }
    let outcome = await runStep(step, ctx, metrics, outcomes);
    // Steps done by hand already asked the operator (done / skip) inside runStep.
    if (ctx.stepPrompter && outcome.manual === undefined) {
      // --step: continue, skip the next step, re-run this one, add a note, or quit.
      for (;;) {
        const choice = await pauseAfter(ctx.stepPrompter, step, outcome);
        if (choice === 'rerun') {
          outcome = await runStep(step, ctx, metrics, outcomes);
          continue;
        }
        if (choice === 'note') {
          const text = await ctx.stepPrompter.input(`Note on "${step.title}":`);
          if (text.trim()) {
            ctx.transcript.append({ type: 'note', step: step.id, text });
            outcome.note = outcome.note ? `${outcome.note}\n${text}` : text;
          }
          continue;
        }
        if (choice === 'quit') stoppedEarly = true;
        if (choice === 'skip' && i + 1 < steps.length) {
          const next = steps[++i]!;
          const skip = skipped(next);
          recordOutcome(ctx, outcomes, findings, outcome);
          outcome = skip;
        }
        break;
      }
    }
    recordOutcome(ctx, outcomes, findings, outcome);
  }
  for (const finding of lateFindings(ctx, outcomes, findings)) {
    const outcome = [...outcomes].reverse().find((o) => o.id === finding.step);
    outcome?.findings.push(finding);
    findings.push(finding);
    ctx.transcript.append({ type: 'finding', ...finding });
  }
  const unmeasured = unmeasuredIn(ctx, outcomes);
  if (ctx.databaseRefused !== undefined) {
    const finding = refusedFinding(ctx.databaseRefused, ctx.phase);
    const holder = poolHolderFinding(outcomes, metrics, steps);
    for (const f of holder ? [holder, finding] : [finding]) {
      findings.push(f);
      ctx.transcript.append({ type: 'finding', ...f });
    }
  }
  for (const reason of unmeasured) {
    const finding = notMeasured(reason, ctx.phase);
    findings.push(finding);
    ctx.transcript.append({ type: 'finding', ...finding });
  }
  return { steps: outcomes, findings, metrics, stoppedEarly, unmeasured };
}

/**
 * Reads only the named steps of a phase whose targets poolctl was given, in the runbook's order:
 * no late findings, no status, nothing done by hand. prevent --emit reads the application's
 * numbers (the Deployment, the pools' maxima) with it; a step that fails is an outcome, as in
 * runPhase.
 */
export async function readSteps(ctx: PhaseContext, ids: readonly string[]): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  for (const step of ctx.runbook[ctx.phase]) {
    const target = targetOf(step);
    if (!ids.includes(step.id) || executorFor(step).role !== 'read') continue;
    if (target !== null && !ctx.targets.has(target)) continue;
    outcomes.push(await runStep(step, ctx, {}, outcomes));
  }
  return outcomes;
}

/**
 * The findings that need more than one step's rows, once every step has run: rules that look at
 * another step too (a leak on the server alongside the replica's full pool), then the lower
 * thresholds that would match when a critical finding stands and the defaults match nothing.
 */
function lateFindings(ctx: PhaseContext, outcomes: StepOutcome[], findings: Finding[]): Finding[] {
  const steps = ctx.runbook[ctx.phase];
  const latest = (id: string) => [...outcomes].reverse().find((o) => o.id === id);
  const rowsOf = (id: string) => {
    const outcome = latest(id);
    return outcome?.status === 'ok' ? outcome.rows : undefined;
  };
  const late: Finding[] = [];
  for (const step of steps) {
    const rows = rowsOf(step.id);
    if (!rows || !step.findings.some((rule) => rule.alongside)) continue;
    late.push(
      ...evaluateAlongside(
        step.findings,
        rows,
        step.id,
        ctx.values,
        ctx.runbook.parameters,
        rowsOf,
      ),
    );
  }
  return [...late, ...thresholdHints(steps, outcomes, [...findings, ...late], ctx.values)];
}

/**
 * The measurements a status needs that the phase could not make: the headline numbers of a
 * metrics step (none declared, failed, skipped, no row, a column missing) and, in verify, every
 * step poolctl can run (its target is configured), since each one is a check of the recovery.
 * A check whose target was not given is listed "to do by hand" instead.
 */
function unmeasuredIn(ctx: PhaseContext, outcomes: StepOutcome[]): string[] {
  const steps = ctx.runbook[ctx.phase];
  const reasons: string[] = [];
  if (!steps.some((s) => s.kind === 'query' && s.metrics)) {
    reasons.push(`the ${ctx.phase} phase of ${ctx.runbook.id} has no metrics step`);
  }
  for (const step of steps) {
    // The exporter's view is optional: a team without one, or an exporter that says nothing, is
    // no missing measurement (the server's own metrics step is the one a status needs).
    if (isServerSide(step)) continue;
    const isMetrics = step.kind === 'query' && step.metrics === true;
    const target = targetOf(step);
    const runnable = target !== null && ctx.targets.has(target);
    // A step with headline numbers (the application's pools) is a measurement in every phase
    // once its target is given: Prometheus asked for and silent is not a healthy application.
    const isHeadline = step.kind === 'promql' && step.headline !== undefined && runnable;
    if (!isMetrics && !isHeadline && !(ctx.phase === 'verify' && runnable)) continue;
    const outcome = [...outcomes].reverse().find((o) => o.id === step.id);
    if (!outcome || outcome.status !== 'ok') {
      const why = outcome?.status === 'failed' ? `failed (${outcome.error})` : 'did not run';
      reasons.push(`"${step.title}" ${why}`);
      continue;
    }
    if (isMetrics) reasons.push(...headlineGaps(step.title, outcome.rows?.[0]));
    // No series is no data, not good news: a pool that exports nothing cannot be called recovered.
    if (step.kind === 'promql' && (outcome.rows?.length ?? 0) === 0)
      reasons.push(`"${step.title}": Prometheus returned no series for its query`);
    // One row for every replica needs the label that tells them apart: without it, `max by`
    // folds every pool into one row, and a full one hides behind a quiet one.
    if (step.kind === 'promql' && step.by !== undefined) {
      if ((outcome.rows ?? []).some((row) => row.replica === ''))
        reasons.push(
          `"${step.title}": series without the replica label (--set replica_label=… names the one your metrics carry)`,
        );
    }
    // NaN (a histogram with no observations in the window, a division by zero) is no number
    // either; in diagnose a wait p95 with no requests behind it is no verdict, so verify only.
    if (step.kind === 'promql' && (ctx.phase === 'verify' || !step.headline)) {
      const judged = step.queries ? Object.keys(step.queries) : [step.range ? 'last' : 'value'];
      for (const row of outcome.rows ?? []) {
        const blank = judged.filter((column) => row[column] === null);
        if (blank.length === 0) continue;
        const who = row.replica !== undefined ? ` replica ${String(row.replica)}:` : '';
        reasons.push(`"${step.title}":${who} no number (NaN) for ${blank.join(', ')}`);
      }
    }
  }
  return reasons;
}

function recordOutcome(
  ctx: PhaseContext,
  outcomes: StepOutcome[],
  findings: Finding[],
  outcome: StepOutcome,
) {
  outcomes.push(outcome);
  findings.push(...outcome.findings);
  if (outcome.status === 'skipped' && outcome.manual === undefined) {
    ctx.transcript.append({
      type: 'step.result',
      step: outcome.id,
      status: 'skipped',
      durationMs: 0,
    });
  }
}

function skipped(step: Step): StepOutcome {
  return {
    id: step.id,
    title: step.title,
    why: step.why,
    kind: step.kind,
    status: 'skipped',
    durationMs: 0,
    findings: [],
  };
}

async function runStep(
  step: Step,
  ctx: PhaseContext,
  metrics: Metrics,
  earlier: readonly StepOutcome[],
): Promise<StepOutcome> {
  const now = ctx.now ?? (() => performance.now());
  const base = skipped(step);
  ctx.transcript.append({
    type: 'step.start',
    step: step.id,
    title: step.title,
    kind: step.kind,
    phase: ctx.phase,
  });

  const executor = executorFor(step);
  const target = targetOf(step);
  if (executor.role !== 'read' || (target !== null && !ctx.targets.has(target))) {
    // Done by hand: a manual step, or one whose target poolctl was not given (the flag says how).
    const byHand = byHandCommand(step, ctx.values, ctx.runbook.parameters, {});
    const command = byHand.lines.join('\n');
    const outcome: StepOutcome = { ...base, command, manual: 'pending' };
    if (byHand.flag) outcome.flag = byHand.flag;
    if (ctx.stepPrompter) {
      outcome.manual = await ctx.stepPrompter.select<'done' | 'skipped'>(
        `By hand: ${command}`,
        [
          { value: 'done', name: 'Done' },
          { value: 'skipped', name: 'Skip it' },
        ],
        'done',
      );
      const note = await ctx.stepPrompter.input('Note (Enter for none):', '');
      if (note.trim()) {
        outcome.note = note;
        ctx.transcript.append({ type: 'note', step: step.id, text: note });
      }
    }
    ctx.transcript.append({
      type: 'manual',
      step: step.id,
      command,
      status: outcome.manual ?? 'pending',
    });
    await ctx.reporter.stepFinished(outcome);
    return outcome;
  }

  if (target === 'database' && ctx.databaseRefused !== undefined) {
    // Refused once, refused for this run: one line in the findings, not one attempt per step.
    const error = 'not run: the database refused poolctl';
    ctx.transcript.append({
      type: 'step.result',
      step: step.id,
      status: 'skipped',
      durationMs: 0,
      error,
    });
    const outcome: StepOutcome = { ...base, status: 'skipped', error };
    await ctx.reporter.stepFinished(outcome);
    return outcome;
  }

  ctx.reporter.stepStarted(step);
  const started = now();
  let rows: Row[];
  try {
    rows = await executor.read(step, { ...ctx, earlier });
  } catch (err) {
    if ((err as { name?: string }).name === 'TargetError') throw err;
    const error = (err as Error).message;
    const outcome: StepOutcome = {
      ...base,
      status: 'failed',
      durationMs: Math.round(now() - started),
      error,
      findings: [
        {
          id: 'step-failed',
          severity: 'warning',
          message: `${step.title}: ${error}`,
          step: step.id,
          suggest: [],
          count: 0,
        },
      ],
    };
    ctx.transcript.append({
      type: 'step.result',
      step: step.id,
      status: 'failed',
      durationMs: outcome.durationMs,
      error,
    });
    await ctx.reporter.stepFinished(outcome);
    return outcome;
  }
  const durationMs = Math.round(now() - started);
  const evaluated = evaluateFindings(
    step.findings,
    rows,
    step.id,
    ctx.values,
    ctx.runbook.parameters,
  );
  // The exporter's verdict stands only where poolctl could not read the server itself.
  const findings =
    isServerSide(step) && serverMeasured(metrics) ? asSecondOpinion(evaluated) : evaluated;
  const outcome: StepOutcome = { ...base, status: 'ok', durationMs, rows, findings };
  ctx.transcript.append({
    type: 'step.result',
    step: step.id,
    status: 'ok',
    durationMs,
    rowCount: rows.length,
    rows: rows.slice(0, TRANSCRIPT_ROWS),
  });
  if ((step.kind === 'promql' || step.kind === 'kubectl') && step.headline) {
    // The fullest replica, the slowest wait: the seed's alert fires on any one of them. A replica
    // without a number leaves the headline out: the highest of the others is not the highest.
    for (const [name, column] of Object.entries(step.headline)) {
      const values = rows.map((row) => row[column]);
      if (values.length > 0 && values.every((v): v is number => typeof v === 'number'))
        metrics[name] = Math.max(...values);
    }
  }
  // Refused by the server, its exporter's numbers are the headline the operator sees first.
  if (
    isServerSide(step) &&
    ctx.databaseRefused !== undefined &&
    metrics.exporter_utilization_percent !== undefined
  ) {
    await ctx.reporter.metrics(metrics);
  }
  if (step.kind === 'query' && step.metrics && rows[0]) {
    for (const [key, value] of Object.entries(rows[0])) {
      if (typeof value === 'number') metrics[key] = value;
    }
    ctx.transcript.append({ type: 'metrics', label: ctx.phase, metrics: { ...metrics } });
    await ctx.reporter.metrics(metrics);
  }
  for (const f of findings) ctx.transcript.append({ type: 'finding', ...f });
  await ctx.reporter.stepFinished(outcome);
  return outcome;
}

type PauseChoice = 'continue' | 'skip' | 'rerun' | 'note' | 'quit';

async function pauseAfter(prompter: Prompter, step: Step, outcome: StepOutcome) {
  return prompter.select<PauseChoice>(
    `${step.title}: ${outcome.status}. Next?`,
    [
      { value: 'continue', name: 'Continue' },
      { value: 'skip', name: 'Skip the next step' },
      { value: 'rerun', name: 'Re-run this step' },
      { value: 'note', name: 'Add a note' },
      { value: 'quit', name: 'Quit the walk-through (summary follows)' },
    ],
    'continue',
  );
}
