import { ExitCode, UsageError } from '../errors.js';
import { makeStyle } from '../io/render.js';
import { DiagnoseView, type Suggestion } from '../io/diagnose-view.js';
import { buildReport } from '../io/json-report.js';
import { defaultRunbookFor, loadRunbookById } from '../runbook/bundled.js';
import { parseSetFlags, resolveParameters } from '../runbook/params.js';
import type { Runbook } from '../runbook/types.js';
import { resolveDatabaseTarget, targetLabel } from '../targets/resolve.js';
import { transcriptPathFor } from '../transcript/paths.js';
import { poolctlVersion } from '../version.js';
import { healthOf, suggestedActions, type PhaseResult } from '../wizard/model.js';
import { runPhase, type PhaseReporter } from '../wizard/phase.js';
import {
  parseCommonOptions,
  type CommonFlags,
  type CommonOptions,
  type Deps,
  type Outcome,
} from './common.js';

export interface DiagnoseFlags extends CommonFlags {
  step?: boolean;
}

export interface DiagnoseOptions extends CommonOptions {
  /** Pause after every step for the operator (continue, skip, re-run, note, quit). */
  step: boolean;
}

export function parseDiagnoseOptions(flags: DiagnoseFlags): DiagnoseOptions {
  return { ...parseCommonOptions(flags), step: Boolean(flags.step) };
}

const quietReporter: PhaseReporter = { stepStarted() {}, stepFinished() {}, metrics() {} };

/** Runs the runbook's read-only diagnosis against the target and reports what it found. */
export async function runDiagnose(opts: DiagnoseOptions, deps: Deps): Promise<Outcome> {
  const { io } = deps;
  const interactive = !opts.nonInteractive && io.canPrompt();
  if (opts.step && !interactive) {
    throw new UsageError('--step needs a terminal: it pauses after every step');
  }
  // Everything that can be wrong with the flags fails here, before a connection or a file is opened.
  const spec = await resolveDatabaseTarget(opts.target, deps.env);
  const runbook: Runbook = await loadRunbookById(
    opts.runbookId ?? defaultRunbookFor(spec.engine).id,
  );
  const overrides = parseSetFlags(opts.sets, runbook.parameters, runbook.id);
  const values = resolveParameters(runbook.parameters, overrides, runbook.id);
  const { path, incident } = transcriptPathFor({
    transcriptFlag: opts.transcriptPath,
    incident: opts.incident,
    env: deps.env,
    now: deps.now(),
  });

  const transcript = deps.openTranscript(path, incident);
  deps.onTranscript(transcript);
  const label = targetLabel(spec);
  transcript.append({
    type: 'session.start',
    command: 'diagnose',
    argv: deps.argv,
    runbook: runbook.id,
    targets: [label],
    poolctl: poolctlVersion(),
    mode: interactive ? 'interactive' : 'non-interactive',
    parameters: overrides,
  });

  const human = opts.output === 'human';
  const style = makeStyle(io.color && !opts.noColor);
  const view = new DiagnoseView(io, style, runbook, values);
  const target = await deps.connect(spec);
  let result: PhaseResult;
  try {
    if (human) view.header(label, `${target.info.product} ${target.info.version}`, incident, path);
    result = await runPhase({
      runbook,
      phase: 'diagnose',
      values,
      target,
      transcript,
      reporter: human ? view : quietReporter,
      stepPrompter: opts.step ? deps.prompter() : undefined,
    });
  } finally {
    view.stopSpinner();
    await target.close();
  }

  const status = healthOf(result.findings);
  const suggestions = suggestionsFor(runbook, result, opts);
  if (human) {
    view.summary({ status, result, suggestions, transcriptPath: path });
  } else {
    const report = buildReport({
      version: poolctlVersion(),
      command: 'diagnose',
      runbook: runbook.id,
      incident,
      status,
      targets: [{ engine: spec.engine, label, version: target.info.version }],
      result,
      suggestions,
      transcript: path,
    });
    io.out.write(`${JSON.stringify(report, null, 2)}\n`);
  }
  const exitCode = status === 'critical' ? ExitCode.unhealthy : ExitCode.ok;
  transcript.end(status, exitCode);
  return { exitCode, status };
}

/** The fitting actions, each with the exact command that repeats it without prompts. */
function suggestionsFor(
  runbook: Runbook,
  result: PhaseResult,
  opts: DiagnoseOptions,
): Suggestion[] {
  const targetFlag = opts.target.pg ? ` --pg '${redactedUrl(opts.target.pg)}'` : '';
  return suggestedActions(result.findings).flatMap((id) => {
    const action = runbook.actions.find((a) => a.id === id);
    if (!action) return [];
    // Repeat only the --set values this action uses.
    const used = 'params' in action ? action.params : [];
    const sets = opts.sets
      .filter((s) => used.includes(s.slice(0, s.indexOf('='))))
      .map((s) => ` --set ${s}`)
      .join('');
    const summary = ('summary' in action && action.summary) || action.why;
    const command =
      action.kind === 'manual'
        ? action.command
        : `poolctl mitigate --action ${id}${targetFlag}${sets} --yes`;
    return [{ id, title: action.title, summary, command }];
  });
}

function redactedUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]+):[^@]*@/i, '$1@');
}
