import { ExitCode, UsageError } from '../errors.js';
import { buildReport, writeReport } from '../io/json-report.js';
import type { DiagnoseView } from '../io/diagnose-view.js';
import { recordingPrompter, type Prompter } from '../io/prompter.js';
import { givenEngineFlag } from '../engines.js';
import { withoutUrlSecrets } from '../transcript/redact.js';
import type { ParameterValues, Runbook, Step } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import type { Transcript } from '../transcript/types.js';
import { actionFailed, runAction, type ActionRecord } from '../wizard/mitigation.js';
import { bySeverity, healthOf, type Finding, type PhaseResult } from '../wizard/model.js';
import { offerPreventFixes } from '../wizard/offer.js';
import { quietReporter, runPhase, type PhaseReporter } from '../wizard/phase.js';
import {
  capacityOf,
  rootCausesOf,
  type Capacity,
  type RootCause,
  type UncheckedCause,
} from '../wizard/prevent.js';
import type { CommonFlags, CommonOptions, Deps, Outcome } from './common.js';
import {
  sessionMitigationContext,
  mitigationReporter,
  parseSafeCommandOptions,
  type SafeCommandOptions,
  type SafetyFlags,
  type SafetyOptions,
} from './safety-options.js';
import { openSession, reportTargets, type RunSession } from './session.js';

export interface PreventFlags extends CommonFlags, SafetyFlags {
  check?: boolean;
  apply?: string[];
}

export interface PreventOptions extends SafeCommandOptions {
  /** The CI form: no prompts, the JSON document, exit 4 when a critical audit fails. */
  check: boolean;
  /** Fixes to apply, in the order given (runbook actions the prevent audits suggest). */
  apply: string[];
}

export function parsePreventOptions(flags: PreventFlags): PreventOptions {
  const check = Boolean(flags.check);
  const apply = [...(flags.apply ?? [])];
  if (check && apply.length > 0) {
    throw new UsageError('--check only audits: run --apply separately (it changes the database)');
  }
  const options = parseSafeCommandOptions(
    flags,
    check ? { ...flags, output: 'json', nonInteractive: true } : flags,
  );
  return { ...options, check, apply };
}

/** The fixes prevent may apply: the actions its audits suggest (runbook data, `prevent:` findings). */
export function preventFixes(runbook: Runbook): Step[] {
  const ids = new Set(runbook.prevent.flatMap((s) => s.findings.flatMap((f) => f.suggest)));
  return runbook.actions.filter((a) => ids.has(a.id));
}

/**
 * Audits the setup against the seeds' Prevention and Root Cause sections: timeouts, limits, the
 * capacity formula, and the evidence of each root cause. With --apply, changes the database's
 * timeouts through the one destructive path first, then audits what new sessions get.
 */
export async function runPrevent(opts: PreventOptions, deps: Deps): Promise<Outcome> {
  const { io } = deps;
  // The settings are read as a new session gets them: poolctl's own statement_timeout stays
  // client-side, or the audit would read poolctl's 10s as the database's.
  const run = await openSession(
    'prevent',
    opts,
    { ...deps, connect: (spec) => deps.connect({ ...spec, sessionDefaults: true }) },
    [],
    opts.apply.length > 0 && !opts.safety.dryRun,
  );
  const { runbook, values, transcript, targets } = run;
  const fixes = preventFixes(runbook);
  const actions = opts.apply.map((id) => {
    const fix = fixes.find((a) => a.id === id);
    if (!fix) {
      throw new UsageError(
        `--apply ${id}: not a prevent fix of ${runbook.id} (known: ${fixes.map((a) => a.id).join(', ') || 'none'})`,
      );
    }
    return fix;
  });
  const ui = opts.output === 'human' ? await import('../io/views.js') : undefined;
  const style = ui?.makeStyle(run.color);
  const reporter = mitigationReporter(
    io,
    ui && style ? new ui.MitigationView(io, style) : undefined,
  );
  try {
    const target = await targets.database();
    const view = ui && style ? new ui.DiagnoseView(io, style, runbook, values) : undefined;
    view?.header(
      'prevent',
      run.label,
      `${target.info.product} ${target.info.version}`,
      run.incident,
      transcript,
    );
    const prompter = run.interactive ? recordingPrompter(deps.prompter(), transcript) : undefined;
    const context = sessionMitigationContext(opts.safety, run, deps, reporter, prompter);
    const records: ActionRecord[] = [];
    for (const action of actions) records.push(await runAction(action, context));
    run.releaseWarning();

    const audited = () =>
      auditPrevention({
        runbook,
        values,
        targets,
        transcript,
        reporter: view ?? quietReporter,
        given: Object.keys(run.overrides),
      });
    let audit = await audited();
    // The audit's summary is on the terminal already (the fixes were offered after it).
    let shown = false;
    // At a terminal with nothing asked of it, prevent offers the fixes its audit found missing,
    // each through the same preview and approval as --apply, then audits again.
    const missing = fixesFor(runbook, audit);
    if (prompter && style && actions.length === 0 && !opts.safety.dryRun && missing.length > 0) {
      printSummary(io.out, style, audit);
      shown = true;
      const fixed = await offerPreventFixes({
        runbook,
        prompter,
        mitigation: context,
        fixes: missing,
      });
      records.push(...fixed);
      if (fixed.some((r) => r.executed)) {
        io.out.write(`\n${style.bold('After the fixes')}\n`);
        audit = await audited();
        shown = false;
      }
    }
    const { result, capacity, causes, unchecked } = audit;
    const status = healthOf(result);
    const exitCode = records.some((r) => r.declined)
      ? ExitCode.declined
      : actionFailed(records) || status === 'critical' || status === 'unknown'
        ? ExitCode.unhealthy
        : ExitCode.ok;
    if (ui && style) {
      if (!shown) printSummary(io.out, style, audit, { applyHint: records.length === 0 });
      io.out.write(style.dim(`Transcript: ${ui.transcriptText(transcript)}\n`));
    } else {
      const report = buildReport({
        command: 'prevent',
        runbook: runbook.id,
        incident: run.incident,
        status,
        targets: reportTargets(run),
        result,
        actions: records,
        transcript,
      });
      writeReport(io, {
        ...report,
        ...(capacity ? { capacity } : {}),
        root_causes: causes,
        root_causes_unchecked: unchecked,
      });
    }
    transcript.end(status, exitCode);
    return { exitCode, status };
  } finally {
    await targets.close();
  }
}

export interface PreventAudit {
  result: PhaseResult;
  capacity?: Capacity;
  causes: RootCause[];
  unchecked: UncheckedCause[];
}

/**
 * The audit: the prevent phase's steps, the capacity formula and the root causes with their
 * evidence, every finding in the transcript. Read-only. `targets` must read the database as a
 * new session gets it (`sessionDefaults`), or poolctl's own statement_timeout is what it sees.
 */
export async function auditPrevention(ctx: {
  runbook: Runbook;
  values: ParameterValues;
  targets: Targets;
  transcript: Transcript;
  reporter: PhaseReporter;
  /** The parameters given with --set: the capacity formula prefers them. */
  given: string[];
}): Promise<PreventAudit> {
  const { runbook, values, targets, transcript } = ctx;
  const result = await runPhase({
    runbook,
    phase: 'prevent',
    values,
    targets,
    transcript,
    reporter: ctx.reporter,
  });
  const { capacity, finding } = capacityOf(ctx.given, values, result.metrics, result.steps);
  result.findings.push(finding);
  transcript.append({ type: 'finding', ...finding });
  const { causes, unchecked } = rootCausesOf(result.steps, result.findings, values);
  for (const u of unchecked) {
    const f: Finding = {
      id: `${u.id}-unchecked`,
      severity: 'info',
      message: `${u.id}: ${u.reason}`,
      step: 'root-causes',
      suggest: [],
      count: 0,
    };
    result.findings.push(f);
    transcript.append({ type: 'finding', ...f });
  }
  for (const cause of causes) {
    transcript.append({
      type: 'note',
      text: `root cause ${cause.id}: ${cause.evidence}; fix: ${cause.fix}`,
    });
  }
  return { result, capacity, causes, unchecked };
}

/** The fixes the audit's findings ask for, most severe first, that prevent can apply. */
export function fixesFor(runbook: Runbook, audit: PreventAudit): string[] {
  const known = new Set(preventFixes(runbook).map((a) => a.id));
  return [...new Set(bySeverity(audit.result.findings).flatMap((f) => f.suggest))].filter((id) =>
    known.has(id),
  );
}

type Style = ReturnType<typeof import('../io/views.js').makeStyle>;

/**
 * After a recovery, the seeds' Prevention: asks to audit (read-only, Enter), shows the audit, and
 * offers each missing timeout through the one destructive path. The audit reads the database as a
 * new session gets it, on its own connection (poolctl's own statement_timeout would hide the
 * server's); the wizard's own connection is closed first, so that the audit and the fixes'
 * before/after counts see one poolctl session, not two. The fixes' records are in the transcript
 * and on screen; they do not change the incident's exit code (the verify's).
 */
export async function offerPrevention(
  run: RunSession,
  ctx: {
    safety: SafetyOptions;
    /** The target flags as given, for the command that audits later. */
    target: CommonOptions['target'];
    deps: Deps;
    prompter: Prompter;
    view: DiagnoseView;
    style: Style;
  },
): Promise<void> {
  const { deps, prompter, view, style } = ctx;
  const { runbook, values, transcript } = run;
  const given = givenEngineFlag(ctx.target);
  const flag = given ? ` ${given.flag} '${withoutUrlSecrets(given.url)}'` : '';
  const later = `So it does not happen again (timeouts, capacity, root cause): poolctl prevent${flag}`;
  const check = await prompter.confirm(
    'Recovered. Check the prevention now (timeouts, capacity, root cause; read-only)?',
    true,
  );
  if (!check) {
    deps.io.out.write(`\n${later}\n`);
    return;
  }
  await run.targets.close();
  const targets = run.auditTargets();
  try {
    const audit = await auditPrevention({
      runbook,
      values,
      targets,
      transcript,
      reporter: view,
      given: Object.keys(run.overrides),
    });
    printSummary(deps.io.out, style, audit);
    const fixes = fixesFor(runbook, audit);
    if (fixes.length === 0) return;
    const { MitigationView } = await import('../io/views.js');
    await offerPreventFixes({
      runbook,
      prompter,
      fixes,
      mitigation: sessionMitigationContext(
        ctx.safety,
        run,
        deps,
        new MitigationView(deps.io, style),
        prompter,
        targets,
      ),
    });
  } finally {
    await targets.close();
  }
}

/** The audit for a terminal: findings, most severe first, the capacity, the root causes. */
export function printSummary(
  out: { write(text: string): unknown },
  s: Style,
  audit: PreventAudit,
  { applyHint = false } = {},
): void {
  const { result, capacity, causes, unchecked } = audit;
  const line = (text = '') => out.write(`${text}\n`);
  line();
  line(s.bold('Prevention audit'));
  const mark = { critical: s.red('✖'), warning: s.yellow('!'), info: s.dim('·') } as const;
  for (const f of bySeverity(result.findings)) line(`${mark[f.severity]} ${f.message}`);
  if (capacity?.derivation?.length) line(s.dim(`  capacity: ${capacity.derivation.join('; ')}`));
  line();
  line(s.bold('Root causes'));
  if (causes.length === 0) line('  none with evidence now');
  for (const c of causes) {
    line(`  ${s.bold(c.id)}: ${c.evidence}`);
    line(s.dim(`    fix: ${c.fix}`));
  }
  for (const u of unchecked) line(s.dim(`  ${u.id} not checked: ${u.reason}`));
  const fixes = [...new Set(result.findings.flatMap((f) => f.suggest))];
  if (applyHint && fixes.length > 0) {
    line();
    line(`Apply: poolctl prevent ${fixes.map((id) => `--apply ${id}`).join(' ')}`);
  }
}
