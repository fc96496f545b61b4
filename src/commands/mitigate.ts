import { ExitCode, UsageError } from '../errors.js';
import { refuseUnsafeChange } from '../executors/change.js';
import { targetOf } from '../runbook/targets.js';
import { byHandCommand } from '../runbook/render.js';
import { buildReport, writeReport } from '../io/json-report.js';
import { recordingPrompter } from '../io/prompter.js';
import { TranscriptError } from '../transcript/writer.js';
import { parseInteger } from '../runbook/params.js';
import type { ParameterValues, Runbook, Step } from '../runbook/types.js';
import { actionFailed, runAction, type ActionRecord } from '../wizard/mitigation.js';
import { measureOrUnknown, type Measurement } from '../wizard/measure.js';
import { healthOf, notMeasured, type PhaseResult } from '../wizard/model.js';
import { offerMitigations } from '../wizard/offer.js';
import { sidesOf } from '../wizard/sides.js';
import { announceEscalation, escalationOf } from '../wizard/prevent.js';
import { runPhase } from '../wizard/phase.js';
import { parseCommonOptions, type CommonFlags, type Deps, type Outcome } from './common.js';
import { suggestionsFor, verifyAndReport } from './diagnose.js';
import {
  sessionMitigationContext,
  mitigationReporter,
  parseSafetyOptions,
  type SafeCommandOptions,
  type SafetyFlags,
} from './safety-options.js';
import { openSession, reportTargets, type RunSession } from './session.js';

export interface MitigateFlags extends CommonFlags, SafetyFlags {
  action?: string[];
  pid?: string;
  cancel?: boolean;
}

export interface MitigateOptions extends SafeCommandOptions {
  /** Runbook action ids, in the order given; empty = measure, then offer (interactive only). */
  actions: string[];
  /** `--pid N`: the session for terminate-pid / cancel-pid. */
  pid?: number;
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
  // A kill refuses when its intent cannot be recorded, saying why: the start-up warning that the
  // transcript cannot be opened waits, and is printed only if no refusal said it.
  const mayKill = opts.actions.length > 0 && !opts.safety.dryRun;
  const run = await openSession('mitigate', opts, deps, pidSet, mayKill);
  const { runbook, values, transcript } = run;
  const actions = opts.actions.map((id) => findAction(runbook, id));
  const ui = opts.output === 'human' ? await import('../io/views.js') : undefined;
  const style = ui?.makeStyle(run.color);
  const reporter = mitigationReporter(
    io,
    ui && style ? new ui.MitigationView(io, style) : undefined,
  );
  const { targets } = run;
  try {
    // An action whose system poolctl was not given is refused before any action runs: asked for
    // by name, it must be done or said to be impossible, not listed as a command and passed.
    for (const action of actions) refuseUnreachable(action, run, values);
    // Every question the operator answers is recorded by the prompter itself.
    const prompter = canAsk ? recordingPrompter(deps.prompter(), transcript) : undefined;
    const context = sessionMitigationContext(opts.safety, run, deps, reporter, prompter);
    let records: ActionRecord[] = [];
    let result: PhaseResult | undefined;
    let verified: PhaseResult | undefined;
    if (actions.length > 0) {
      // Each kill checks that poolctl can see to choose before it selects anything (runAction);
      // the account's view is the same for every action, so the first kill refuses before any.
      for (const action of actions) records.push(await runAction(action, context));
    } else if (ui && style) {
      // Alone and without --action (only at a terminal): measure first, then offer what fits.
      const target = await targets.database();
      const view = new ui.DiagnoseView(io, style, runbook, values);
      view.header(
        'mitigate',
        run.label,
        `${target.info.product} ${target.info.version}`,
        run.incident,
        transcript,
      );
      result = await runPhase({
        runbook,
        phase: 'diagnose',
        values,
        targets,
        transcript,
        reporter: view,
      });
      const suggestions = suggestionsFor(runbook, values, result, opts);
      view.summary({
        status: healthOf(result),
        result,
        suggestions,
        transcript,
        sides: sidesOf(runbook, result.findings, result.metrics, targets.has('prometheus')),
      });
      ({ records, verified } = await offerMitigations({
        runbook,
        prompter: prompter!,
        suggested: suggestions.map((s) => s.id),
        mitigation: context,
        verify: () => verifyAndReport(view, { runbook, values, targets, transcript }),
        note: (text) => transcript.append({ type: 'note', text }),
      }));
      // Recovered: the seeds end with Prevention, offered as diagnose's wizard offers it.
      if (verified && healthOf(verified) === 'healthy') {
        // The incident's exit code is the verify's: a prevention fix declined or failed is in
        // the transcript and on screen, not a reason to call a recovered incident unhealthy.
        const { offerPrevention } = await import('./prevent.js');
        await offerPrevention(run, {
          safety: opts.safety,
          target: opts.target,
          deps,
          prompter: prompter!,
          view,
          style,
        });
      }
    }

    run.releaseWarning(); // no kill refused: say now that nothing is being recorded
    // One status, judged as diagnose and verify judge theirs: the verify that ran, else the last
    // read of the metrics step (after the last kill, before it when nothing was killed, the
    // diagnosis when it came first), else a read taken now (manual actions change nothing).
    const final: Measurement | PhaseResult =
      verified ??
      latestMeasurement(records) ??
      result ??
      (await measureOrUnknown(context, 'after the actions', {
        databaseNeeded: records.some((r) => r.kind === 'terminate'),
      }));
    const status = healthOf(final);
    const victimFailed = actionFailed(records);
    // Exit 4 (README "Exit codes" for mitigate): a victim could not be killed, or the server is
    // still critical or its health unknown afterwards; a verify that ran must have passed.
    const unhealthy = verified
      ? status !== 'healthy'
      : status === 'critical' || status === 'unknown';
    const exitCode = records.some((r) => r.declined)
      ? ExitCode.declined
      : victimFailed || unhealthy
        ? ExitCode.unhealthy
        : ExitCode.ok;
    // RUNBOOK-006 "Escalation": something was done and the state is still critical.
    const escalation = records.some((r) => r.executed)
      ? escalationOf(runbook, status, 'still critical after the mitigation')
      : undefined;
    const escalate = escalation ? announceEscalation(transcript, escalation) : [];
    if (ui && style) {
      const first = records.find((r) => r.before)?.before;
      const last = [...records].reverse().find((r) => r.after)?.after;
      if (records.length > 1 && first && last)
        io.out.write(`Overall: ${ui.beforeAfter(first, last, style)}\n`);
      if (!verified && unhealthy && records.length > 0)
        io.out.write(`${ui.stillUnhealthy(status, final, style)}\n`);
      for (const line of escalate) io.out.write(`${style.red.bold(line)}\n`);
      io.out.write(style.dim(`Transcript: ${ui.transcriptText(transcript)}\n`));
    } else {
      const report = buildReport({
        command: 'mitigate',
        runbook: runbook.id,
        incident: run.incident,
        status,
        targets: reportTargets(run),
        result,
        findings: result
          ? undefined
          : [...final.findings, ...final.unmeasured.map((r) => notMeasured(r, 'mitigate'))],
        actions: records,
        metrics: final.metrics,
        transcript,
      });
      writeReport(io, { ...report, ...(escalation ? { escalation } : {}) });
    }
    transcript.end(status, exitCode);
    return { exitCode, status };
  } catch (err) {
    // A refused kill has said that nothing can be recorded; any other failure has not.
    if (!(err instanceof TranscriptError)) run.releaseWarning();
    throw err;
  } finally {
    await targets.close();
  }
}

/** Exit 2 for an action whose target is not configured, with the flag and the command by hand. */
function refuseUnreachable(action: Step, run: RunSession, values: ParameterValues): void {
  const target = targetOf(action);
  if (target === null || action.kind === 'manual') return;
  if (run.targets.has(target)) {
    if (action.kind === 'change') {
      const given = Object.keys(run.overrides);
      refuseUnsafeChange(action, { runbook: run.runbook, targets: run.targets, given });
    }
    return;
  }
  const byHand = byHandCommand(action, values, run.runbook.parameters, {});
  throw new UsageError(
    `--action ${action.id} needs a ${target} target: pass ${byHand.flag ?? 'its flag'}; nothing was done (by hand: ${byHand.lines.join(' && ')})`,
  );
}

function findAction(runbook: Runbook, id: string) {
  const action = runbook.actions.find((a) => a.id === id);
  if (!action) {
    const known = runbook.actions.map((a) => a.id).join(', ');
    throw new UsageError(`--action ${id}: no such action in ${runbook.id} (known: ${known})`);
  }
  return action;
}

/** The last action's read of the metrics step, if any action took one. */
function latestMeasurement(records: ActionRecord[]): Measurement | undefined {
  return [...records].reverse().find((r) => r.measured)?.measured;
}
