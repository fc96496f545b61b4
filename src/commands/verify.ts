import { ExitCode, UsageError } from '../errors.js';
import { buildReport, writeReport } from '../io/json-report.js';
import { formatDuration, parseDuration } from '../runbook/params.js';
import { healthOf, notMeasured, type PhaseResult } from '../wizard/model.js';
import { quietReporter, runPhase } from '../wizard/phase.js';
import { databaseOrRefusal, refusedExitCode } from '../wizard/exporter.js';
import { sidesOf } from '../wizard/sides.js';
import { announceEscalation, escalationOf } from '../wizard/prevent.js';
import {
  parseCommonOptions,
  type CommonFlags,
  type CommonOptions,
  type Deps,
  type Outcome,
} from './common.js';
import { openSession, reportTargets } from './session.js';

export interface VerifyFlags extends CommonFlags {
  wait?: string;
  interval?: string;
}

export interface VerifyOptions extends CommonOptions {
  /** Keep checking until healthy or this many seconds have passed (0: check once). */
  waitS: number;
  intervalS: number;
}

export function parseVerifyOptions(flags: VerifyFlags): VerifyOptions {
  const waitS = flags.wait ? parseDuration(flags.wait, `--wait ${flags.wait}`) : 0;
  const interval = flags.interval ?? '5s';
  const intervalS = parseDuration(interval, `--interval ${interval}`);
  if (intervalS <= 0) throw new UsageError('--interval: must be more than 0s');
  return { ...parseCommonOptions(flags), waitS, intervalS };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Checks the recovery against the runbook's verify thresholds (RUNBOOK-006 "Verify
 * Resolution"); with --wait, checks again until it holds or the time is up.
 */
export async function runVerify(opts: VerifyOptions, deps: Deps): Promise<Outcome> {
  const run = await openSession('verify', opts, deps);
  const { runbook, values, transcript } = run;
  const ui = opts.output === 'human' ? await import('../io/views.js') : undefined;
  const style = ui?.makeStyle(run.color);
  const view = ui && style ? new ui.DiagnoseView(deps.io, style, runbook, values) : undefined;
  const { targets } = run;
  // Refused, but Prometheus given: the exporter can still say "still full" (never "recovered":
  // the checks that need the server stay unmeasured, so the status is unknown at best).
  let { target, refused } = await databaseOrRefusal(targets);
  if (refused) deps.io.err.write(`poolctl: ${refused.message}\n`);
  try {
    if (view) {
      view.header(
        'verify',
        run.label,
        target ? `${target.info.product} ${target.info.version}` : 'refused poolctl',
        run.incident,
        transcript,
      );
    }
    const deadline = Date.now() + opts.waitS * 1000;
    // With --wait, one lucky sample does not end an incident: the checks must hold this long.
    const stableForS = opts.waitS > 0 ? Number(values.verify_stable_for ?? 0) : 0;
    let healthySince: number | undefined;
    let result: PhaseResult;
    for (let attempt = 1; ; attempt++) {
      if (refused && attempt > 1) {
        // Knock again: a slot that freed lets poolctl read the server itself from now on.
        targets.forgetRefusal();
        ({ target, refused } = await databaseOrRefusal(targets));
        if (target) deps.io.err.write('poolctl: the database lets poolctl in now\n');
      }
      result = await runPhase({
        runbook,
        phase: 'verify',
        values,
        targets,
        transcript,
        reporter: view ?? quietReporter,
        databaseRefused: refused?.message,
      });
      const status = healthOf(result);
      healthySince = status === 'healthy' ? (healthySince ?? Date.now()) : undefined;
      const heldS = healthySince === undefined ? 0 : (Date.now() - healthySince) / 1000;
      if (healthySince !== undefined && heldS >= stableForS) break;
      if (Date.now() + opts.intervalS * 1000 > deadline) {
        if (healthySince !== undefined) {
          // Healthy at the end, but not for long enough: that is not yet a recovery.
          const reason = `healthy for ${formatDuration(Math.floor(heldS))} only, not the ${formatDuration(stableForS)} verify_stable_for asks (--wait longer)`;
          result.unmeasured.push(reason);
          result.findings.push(notMeasured(reason, 'verify'));
        }
        break;
      }
      const message =
        healthySince === undefined
          ? `not there yet (attempt ${attempt}); checking again in ${opts.intervalS}s`
          : `healthy for ${formatDuration(Math.floor(heldS))}; checking it holds for ${formatDuration(stableForS)}`;
      deps.io.err.write(`poolctl: ${message}\n`);
      await sleep(opts.intervalS * 1000);
    }
    const status = healthOf(result);
    // One verdict, at the end: a "Recovered" printed on each healthy sample of a --wait that then
    // ends unstable would tell the operator the opposite of the exit code.
    view?.verdict(status, result, targets.has('prometheus'));
    // Only healthy passes: a warning is a check that failed, unknown one that could not be made.
    const exitCode = refused
      ? refusedExitCode(status)
      : status === 'healthy'
        ? ExitCode.ok
        : ExitCode.unhealthy;
    // RUNBOOK-006 "Escalation": still critical after the mitigation — name who to call.
    const escalation = escalationOf(runbook, status, 'verify ends critical');
    const escalate = escalation ? announceEscalation(transcript, escalation) : [];
    if (ui && style) {
      for (const line of escalate) deps.io.out.write(`${style.red.bold(line)}\n`);
      deps.io.out.write(style.dim(`Transcript: ${ui.transcriptText(transcript)}\n`));
    } else {
      const report = buildReport({
        command: 'verify',
        runbook: runbook.id,
        incident: run.incident,
        status,
        targets: reportTargets(run),
        result,
        sides: sidesOf(runbook, result.findings, result.metrics, targets.has('prometheus')),
        transcript,
        error: refused && exitCode === refused.exitCode ? refused : undefined,
      });
      writeReport(deps.io, { ...report, ...(escalation ? { escalation } : {}) });
    }
    transcript.end(status, exitCode);
    return { exitCode, status };
  } finally {
    await targets.close();
  }
}
