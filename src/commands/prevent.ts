import { ExitCode, UsageError } from '../errors.js';
import { buildReport, writeReport } from '../io/json-report.js';
import { recordingPrompter } from '../io/prompter.js';
import type { Runbook, Step } from '../runbook/types.js';
import {
  actionFailed,
  runAction,
  type ActionRecord,
  type MitigationReporter,
} from '../wizard/mitigation.js';
import { bySeverity, healthOf, type Finding, type PhaseResult } from '../wizard/model.js';
import { runPhase } from '../wizard/phase.js';
import {
  capacityOf,
  rootCausesOf,
  type Capacity,
  type RootCause,
  type UncheckedCause,
} from '../wizard/prevent.js';
import {
  parseCommonOptions,
  type CommonFlags,
  type CommonOptions,
  type Deps,
  type Outcome,
} from './common.js';
import { quietReporter } from './diagnose.js';
import {
  mitigationContext,
  parseSafetyOptions,
  type SafetyFlags,
  type SafetyOptions,
} from './safety-options.js';
import { openSession, reportTargets } from './session.js';

export interface PreventFlags extends CommonFlags, SafetyFlags {
  check?: boolean;
  apply?: string[];
}

export interface PreventOptions extends CommonOptions {
  /** The CI form: no prompts, the JSON document, exit 4 when a critical audit fails. */
  check: boolean;
  /** Fixes to apply, in the order given (runbook actions the prevent audits suggest). */
  apply: string[];
  safety: SafetyOptions;
}

export function parsePreventOptions(flags: PreventFlags): PreventOptions {
  const check = Boolean(flags.check);
  const apply = [...(flags.apply ?? [])];
  if (check && apply.length > 0) {
    throw new UsageError('--check only audits: run --apply separately (it changes the database)');
  }
  const common = parseCommonOptions(
    check ? { ...flags, output: 'json', nonInteractive: true } : flags,
  );
  return { ...common, check, apply, safety: parseSafetyOptions(flags) };
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
  const reporter: MitigationReporter =
    ui && style
      ? new ui.MitigationView(io, style)
      : {
          victims() {},
          change() {},
          notice: (text) => io.err.write(`poolctl: ${text}\n`),
          result() {},
        };
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
    const canAsk = run.interactive;
    const prompter = canAsk ? recordingPrompter(deps.prompter(), transcript) : undefined;
    const context = mitigationContext(opts.safety, {
      runbook,
      values,
      targets,
      interrupts: deps.interrupts,
      given: Object.keys(run.overrides),
      transcript,
      reporter,
      prompter,
    });
    const records: ActionRecord[] = [];
    for (const action of actions) records.push(await runAction(action, context));
    run.releaseWarning();

    const result = await runPhase({
      runbook,
      phase: 'prevent',
      values,
      targets,
      transcript,
      reporter: view ?? quietReporter,
    });
    const { capacity, finding } = capacityOf(
      Object.keys(run.overrides),
      values,
      result.metrics,
      result.steps,
    );
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

    const status = healthOf(result);
    const exitCode = records.some((r) => r.declined)
      ? ExitCode.declined
      : actionFailed(records) || status === 'critical' || status === 'unknown'
        ? ExitCode.unhealthy
        : ExitCode.ok;
    if (ui && style) {
      printSummary(io.out, style, result, causes, unchecked, capacity, runbook);
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

type Style = ReturnType<typeof import('../io/views.js').makeStyle>;

function printSummary(
  out: { write(text: string): unknown },
  s: Style,
  result: PhaseResult,
  causes: RootCause[],
  unchecked: UncheckedCause[],
  capacity: Capacity | undefined,
  runbook: Runbook,
): void {
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
  if (fixes.length > 0) {
    line();
    line(`Apply: poolctl prevent ${fixes.map((id) => `--apply ${id}`).join(' ')}`);
  }
  void runbook;
}
