import { givenEngineFlag } from '../engines.js';
import { ExitCode, UsageError } from '../errors.js';
import type { DiagnoseView, Suggestion } from '../io/diagnose-view.js';
import { buildReport, writeReport } from '../io/json-report.js';
import { recordingPrompter } from '../io/prompter.js';
import { byHandCommand, parametersOf, shellQuote } from '../runbook/render.js';
import { targetOf } from '../runbook/targets.js';
import type { ParameterValues, Runbook } from '../runbook/types.js';
import { actionFailed, type ActionRecord } from '../wizard/mitigation.js';
import { healthOf, type PhaseResult } from '../wizard/model.js';
import { redactText, withoutUrlSecrets } from '../transcript/redact.js';
import { offerMitigations } from '../wizard/offer.js';
import { databaseOrRefusal, refusedExitCode } from '../wizard/exporter.js';
import { rankActions } from '../wizard/rank.js';
import { sidesOf } from '../wizard/sides.js';
import { announceEscalation, escalationOf, rootCausesOf } from '../wizard/prevent.js';
import { quietReporter, runPhase, type PhaseContext } from '../wizard/phase.js';
import type { CommonFlags, CommonOptions, Deps, Outcome } from './common.js';
import {
  sessionMitigationContext,
  parseSafeCommandOptions,
  type SafeCommandOptions,
  type SafetyFlags,
} from './safety-options.js';
import { openSession, reportTargets } from './session.js';

export interface DiagnoseFlags extends CommonFlags, SafetyFlags {
  step?: boolean;
}

/** `safety`: how the mitigations offered after the findings behave (interactive runs only). */
export interface DiagnoseOptions extends SafeCommandOptions {
  /** Pause after every step for the operator (continue, skip, re-run, note, quit). */
  step: boolean;
}

export function parseDiagnoseOptions(flags: DiagnoseFlags): DiagnoseOptions {
  return { ...parseSafeCommandOptions(flags), step: Boolean(flags.step) };
}

/**
 * Runs the runbook's read-only diagnosis and reports what it found. At a terminal it then offers
 * the fitting mitigation, verifies the recovery, and ends in one transcript.
 */
export async function runDiagnose(opts: DiagnoseOptions, deps: Deps): Promise<Outcome> {
  const { io } = deps;
  if (opts.step && (opts.nonInteractive || !io.canPrompt())) {
    throw new UsageError('--step needs a terminal: it pauses after every step');
  }
  const run = await openSession('diagnose', opts, deps);
  const { runbook, values, transcript } = run;
  const human = opts.output === 'human';
  const ui = human ? await import('../io/views.js') : undefined;
  const style = ui?.makeStyle(run.color);
  const view = ui && style ? new ui.DiagnoseView(io, style, runbook, values) : undefined;
  const { targets } = run;
  // A server that refuses poolctl (out of slots, even for the on-call account) is still read
  // from outside when Prometheus is given: its exporter, and the application's pools.
  const first = await databaseOrRefusal(targets);
  const { target } = first;
  let { refused } = first;
  if (refused) io.err.write(`poolctl: ${refused.message}\n`);
  let result: PhaseResult;
  let records: ActionRecord[] = [];
  let verified: PhaseResult | undefined;
  try {
    view?.header(
      'diagnose',
      run.label,
      target ? `${target.info.product} ${target.info.version}` : 'refused poolctl',
      run.incident,
      transcript,
    );
    result = await runPhase({
      runbook,
      phase: 'diagnose',
      values,
      targets,
      transcript,
      reporter: view ?? quietReporter,
      stepPrompter: opts.step ? recordingPrompter(deps.prompter(), transcript) : undefined,
      databaseRefused: refused?.message,
    });
    const suggestions = suggestionsFor(runbook, values, result, opts);
    const status = healthOf(result);
    const sides = sidesOf(runbook, result.findings, result.metrics, targets.has('prometheus'));
    view?.summary({ status, result, suggestions, transcript, sides });
    // RUNBOOK-006 Root Cause Analysis, where the diagnosis already holds the evidence.
    const { causes } = rootCausesOf(result.steps, result.findings, values);
    for (const cause of causes) {
      transcript.append({ type: 'note', text: `root cause ${cause.id}: ${cause.evidence}` });
    }
    if (view && style && causes.length > 0) {
      io.out.write(`\n${style.bold('Likely root causes')}\n`);
      for (const c of causes) io.out.write(`  ${style.bold(c.id)}: ${c.evidence}\n`);
      io.out.write(style.dim('  (poolctl prevent names the fix for each)\n'));
    }
    if (run.interactive && ui && view && style && suggestions.length > 0) {
      const prompter = recordingPrompter(deps.prompter(), transcript);
      io.out.write('\n');
      ({ records, verified } = await offerMitigations({
        runbook,
        prompter,
        suggested: suggestions.map((s) => s.id),
        thresholds: result.findings.flatMap((f) => (f.hint ? [f.hint] : [])),
        mitigation: sessionMitigationContext(
          opts.safety,
          run,
          deps,
          new ui.MitigationView(io, style),
          prompter,
        ),
        verify: async () => {
          // A server that refused poolctl may have a slot again after the fix: knock once more,
          // or the verify would report the old refusal on a server that is back.
          if (refused) {
            targets.forgetRefusal();
            ({ refused } = await databaseOrRefusal(targets));
          }
          return verifyAndReport(view, {
            runbook,
            values,
            targets,
            transcript,
            databaseRefused: refused?.message,
          });
        },
        note: (text) => transcript.append({ type: 'note', text }),
      }));
      // RUNBOOK-006 "Escalation": the verify after the mitigation ends critical.
      const escalation =
        verified && escalationOf(runbook, healthOf(verified), 'verify ends critical');
      if (escalation) {
        for (const line of announceEscalation(transcript, escalation))
          io.out.write(`${style.red.bold(line)}\n`);
      } else if (verified && healthOf(verified) === 'healthy') {
        // Recovered: the seeds end with Prevention. Read-only audit first, then each missing
        // timeout offered through the one destructive path (preview, approval, read-back).
        // The incident's exit code is the verify's: a prevention fix declined or failed is in
        // the transcript and on screen, not a reason to call a recovered incident unhealthy.
        const { offerPrevention } = await import('./prevent.js');
        await offerPrevention(run, {
          safety: opts.safety,
          target: opts.target,
          deps,
          prompter,
          view,
          style,
        });
      }
    }
    if (!view) {
      writeReport(io, {
        ...buildReport({
          command: 'diagnose',
          runbook: runbook.id,
          incident: run.incident,
          status,
          targets: reportTargets(run),
          result,
          suggestions,
          sides,
          transcript,
          error: refused && status !== 'critical' ? refused : undefined,
        }),
        root_causes: causes,
      });
    }
    const finalStatus = verified ? healthOf(verified) : status;
    // Exit 4: a critical finding stands, nothing could be measured, the verify that ran did not
    // reach its thresholds (only healthy is a recovery, as in poolctl verify), or an action the
    // operator chose did not do what it said (as mitigate exits). A server that refused poolctl:
    // 4 while a critical finding stands (its exporter says it is full), else 3, as unreachable.
    const unhealthy =
      actionFailed(records) ||
      (verified
        ? finalStatus !== 'healthy'
        : finalStatus === 'critical' || finalStatus === 'unknown');
    const exitCode = records.some((r) => r.declined)
      ? ExitCode.declined
      : refused
        ? refusedExitCode(actionFailed(records) ? 'critical' : finalStatus)
        : unhealthy
          ? ExitCode.unhealthy
          : ExitCode.ok;
    transcript.end(finalStatus, exitCode);
    return { exitCode, status: finalStatus };
  } finally {
    view?.stopSpinner();
    await targets.close();
  }
}

/** Runs the verify phase with the human view and says whether the pool recovered. */
export async function verifyAndReport(
  view: DiagnoseView,
  ctx: Pick<PhaseContext, 'runbook' | 'values' | 'targets' | 'transcript' | 'databaseRefused'>,
): Promise<PhaseResult> {
  const verified = await runPhase({ ...ctx, phase: 'verify', reporter: view });
  view.verdict(healthOf(verified), verified, ctx.targets.has('prometheus'));
  return verified;
}

/** The fitting actions, each with the exact command that repeats it without prompts. */
export function suggestionsFor(
  runbook: Runbook,
  values: ParameterValues,
  result: PhaseResult,
  opts: CommonOptions,
): Suggestion[] {
  const given = givenEngineFlag(opts.target);
  const targetFlag = given ? ` ${given.flag} '${withoutUrlSecrets(given.url)}'` : '';
  // One order for the summary, the JSON, the wizard's menu and mitigate (src/wizard/rank.ts).
  return rankActions(runbook, result.findings).flatMap((id) => {
    const action = runbook.actions.find((a) => a.id === id);
    if (!action) return [];
    // Repeat only the --set values this action uses, and the cluster flags a kubectl change needs.
    const used = parametersOf(action);
    const sets = opts.sets
      .filter((s) => used.includes(s.slice(0, s.indexOf('='))))
      .map((s) => ` --set ${withoutUrlSecrets(redactText(s))}`)
      .join('');
    const summary = ('summary' in action && action.summary) || action.why;
    // A manual action is the operator's: its commands with the real values, ready to paste.
    const base = `poolctl mitigate --action ${id}${targetFlag}${targetOf(action) === 'kubernetes' ? clusterFlags(opts) : ''}`;
    const command =
      action.kind === 'manual'
        ? byHandCommand(action, values, runbook.parameters).lines.join('\n')
        : `${base}${sets} --yes`;
    // A hint's lower threshold for this action: its own command, never folded into the one above
    // (it selects more victims than the runbook's default), and without --yes: mitigate then
    // shows exactly whom it selects and asks, or refuses (exit 5) where nobody can answer.
    const hinted =
      action.kind === 'manual'
        ? undefined
        : result.findings.find((f) => f.hint?.action === id && used.includes(f.hint.param));
    const lower = hinted?.hint && {
      set: hinted.hint.set,
      count: hinted.count,
      matches: hinted.hint.matches,
      command: `${base}${opts.sets
        .filter((s) => used.includes(s.slice(0, s.indexOf('='))))
        .filter((s) => !s.startsWith(`${hinted.hint!.param}=`))
        .map((s) => ` --set ${withoutUrlSecrets(redactText(s))}`)
        .join('')} --set ${hinted.hint.set}`,
    };
    return [
      { id, title: action.title, summary, command, ...(lower && { lower_threshold: lower }) },
    ];
  });
}

/** ` --kube-context 'prod' --namespace 'shop'`: the cluster flags as given, shell-quoted. */
function clusterFlags(opts: CommonOptions): string {
  const { kubeContext, namespace, kubectl } = opts.systems;
  return [
    ['--kube-context', kubeContext],
    ['--namespace', namespace],
    ['--kubectl', kubectl],
  ]
    .filter(([, value]) => value !== undefined)
    .map(([flag, value]) => ` ${flag} ${shellQuote(value!)}`)
    .join('');
}
