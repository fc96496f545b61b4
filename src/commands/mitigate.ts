import { ExitCode, UsageError } from '../errors.js';
import { buildReport, writeReport } from '../io/json-report.js';
import { parseInteger } from '../runbook/params.js';
import type { Runbook } from '../runbook/types.js';
import { runAction, type ActionRecord, type MitigationReporter } from '../wizard/mitigation.js';
import { healthOf, type HealthStatus, type Metrics, type PhaseResult } from '../wizard/model.js';
import { offerMitigations } from '../wizard/offer.js';
import { runPhase } from '../wizard/phase.js';
import { refuseBlindKill } from '../wizard/visibility.js';
import {
  parseCommonOptions,
  type CommonFlags,
  type CommonOptions,
  type Deps,
  type Outcome,
} from './common.js';
import { suggestionsFor, verifyAndReport } from './diagnose.js';
import {
  mitigationContext,
  parseSafetyOptions,
  type SafetyFlags,
  type SafetyOptions,
} from './safety-options.js';
import { openSession } from './session.js';

export interface MitigateFlags extends CommonFlags, SafetyFlags {
  action?: string[];
  pid?: string;
  cancel?: boolean;
}

export interface MitigateOptions extends CommonOptions {
  /** Runbook action ids, in the order given; empty = measure, then offer (interactive only). */
  actions: string[];
  /** `--pid N`: the session for terminate-pid / cancel-pid. */
  pid?: number;
  safety: SafetyOptions;
}

export function parseMitigateOptions(flags: MitigateFlags): MitigateOptions {
  const common = parseCommonOptions(flags);
  const actions = [...(flags.action ?? [])];
  let pid: number | undefined;
  if (flags.pid !== undefined) {
    pid = parseInteger(flags.pid, `--pid ${flags.pid}`);
    if (pid < 1) throw new UsageError(`--pid ${flags.pid}: expected a process id`);
    if (actions.length === 0) actions.push(flags.cancel ? 'cancel-pid' : 'terminate-pid');
  } else if (flags.cancel) {
    throw new UsageError('--cancel goes with --pid: use --action cancel-long for long queries');
  }
  return { ...common, actions, pid, safety: parseSafetyOptions(flags) };
}

/** Frees connections: shows the victims, asks (or needs --yes), kills, and measures before/after. */
export async function runMitigate(opts: MitigateOptions, deps: Deps): Promise<Outcome> {
  const { io } = deps;
  const canAsk = !opts.nonInteractive && io.canPrompt();
  if (opts.actions.length === 0 && !canAsk) {
    throw new UsageError(
      '--action required when not running interactively (see: poolctl runbooks show)',
    );
  }
  const pidSet = opts.pid !== undefined ? [`pid=${opts.pid}`] : [];
  const run = await openSession('mitigate', opts, deps, pidSet);
  const { runbook, values, transcript } = run;
  const actions = opts.actions.map((id) => findAction(runbook, id));
  const ui = opts.output === 'human' ? await import('../io/views.js') : undefined;
  const style = ui?.makeStyle(run.color);
  const reporter: MitigationReporter =
    ui && style
      ? new ui.MitigationView(io, style)
      : { victims() {}, notice: (text) => io.err.write(`poolctl: ${text}\n`), result() {} };
  const target = await deps.connect(run.spec);
  try {
    const prompter = canAsk ? deps.prompter() : undefined;
    const context = mitigationContext(opts.safety, {
      runbook,
      values,
      target,
      transcript,
      reporter,
      prompter,
    });
    let records: ActionRecord[] = [];
    let result: PhaseResult | undefined;
    let verified: PhaseResult | undefined;
    if (actions.length > 0) {
      for (const action of actions) {
        if (action.kind === 'terminate') await refuseBlindKill(action.id, runbook, values, target);
      }
      for (const action of actions) records.push(await runAction(action, context));
    } else if (ui && style) {
      // Alone and without --action (only at a terminal): measure first, then offer what fits.
      const view = new ui.DiagnoseView(io, style, runbook, values);
      view.header(
        'mitigate',
        run.label,
        `${target.info.product} ${target.info.version}`,
        run.incident,
        run.transcriptPath,
      );
      result = await runPhase({
        runbook,
        phase: 'diagnose',
        values,
        target,
        transcript,
        reporter: view,
      });
      const suggestions = suggestionsFor(runbook, result, opts);
      view.summary({
        status: healthOf(result),
        result,
        suggestions,
        transcriptPath: run.transcriptPath,
      });
      ({ records, verified } = await offerMitigations({
        runbook,
        prompter: prompter!,
        suggested: suggestions.map((s) => s.id),
        mitigation: context,
        verify: () => verifyAndReport(view, { runbook, values, target, transcript }),
        note: (text) => transcript.append({ type: 'note', text }),
      }));
    }

    const latest = latestMetrics(records, result);
    const status: HealthStatus = verified ? healthOf(verified) : statusOf(latest, values);
    // A verify that ran and did not reach its thresholds is a failure too (DESIGN.md exit 4).
    const failed =
      records.some((r) =>
        r.results.some((x) => x.outcome === 'failed' || x.outcome === 'still-there'),
      ) ||
      (verified !== undefined && status !== 'healthy');
    const exitCode = records.some((r) => r.declined)
      ? ExitCode.declined
      : failed
        ? ExitCode.unhealthy
        : ExitCode.ok;
    if (ui && style) {
      const first = records.find((r) => r.before)?.before;
      const last = [...records].reverse().find((r) => r.after)?.after;
      if (records.length > 1 && first && last)
        io.out.write(`Overall: ${ui.beforeAfter(first, last, style)}\n`);
      io.out.write(style.dim(`Transcript: ${run.transcriptPath}\n`));
    } else {
      const report = buildReport({
        command: 'mitigate',
        runbook: runbook.id,
        incident: run.incident,
        status,
        targets: [{ engine: run.spec.engine, label: run.label, version: target.info.version }],
        result,
        actions: records,
        metrics: latest,
        transcript: run.transcriptPath,
      });
      writeReport(io, report);
    }
    transcript.end(status, exitCode);
    return { exitCode, status };
  } finally {
    await target.close();
  }
}

function findAction(runbook: Runbook, id: string) {
  const action = runbook.actions.find((a) => a.id === id);
  if (!action) {
    const known = runbook.actions.map((a) => a.id).join(', ');
    throw new UsageError(`--action ${id}: no such action in ${runbook.id} (known: ${known})`);
  }
  return action;
}

function latestMetrics(records: ActionRecord[], result?: PhaseResult): Metrics {
  for (const r of [...records].reverse()) if (r.after) return r.after;
  for (const r of [...records].reverse()) if (r.before) return r.before;
  return result?.metrics ?? {};
}

/** Health from the numbers alone, against the runbook's thresholds; no number, no health. */
function statusOf(metrics: Metrics, values: Record<string, unknown>): HealthStatus {
  const pct = metrics.utilization_percent;
  if (pct === undefined || Number.isNaN(pct)) return 'unknown';
  if (pct >= Number(values.utilization_critical ?? 95)) return 'critical';
  if (pct >= Number(values.utilization_warning ?? 90)) return 'warning';
  return 'healthy';
}
