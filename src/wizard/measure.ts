import { TargetError } from '../errors.js';
import { sanitizeRows } from '../io/sanitize.js';
import { bindParameters } from '../runbook/params.js';
import type { ParameterValues, Runbook } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import { evaluateFindings } from './findings.js';
import { headlineGaps, type Finding, type Metrics, type PhaseResult } from './model.js';

/**
 * One read of the runbook's metrics step, judged by the step's own finding rules: the numbers,
 * the findings they raise (pool-critical, limited-view, …) and what could not be measured. It is
 * what a mitigation's before and after are, and what `healthOf` gives mitigate's status from, so
 * that mitigate, diagnose and verify call the same server the same thing.
 */
export interface Measurement extends Pick<PhaseResult, 'findings' | 'unmeasured'> {
  metrics: Metrics;
}

export interface MeasureContext {
  runbook: Runbook;
  values: ParameterValues;
  targets: Targets;
}

/** Runs the metrics step once. A failing query throws: the caller decides what that means. */
export async function measureServer(ctx: MeasureContext): Promise<Measurement> {
  const step = ctx.runbook.diagnose.find((s) => s.kind === 'query' && s.metrics);
  if (!step || step.kind !== 'query') {
    return {
      metrics: {},
      findings: [],
      unmeasured: [`the diagnose phase of ${ctx.runbook.id} has no metrics step`],
    };
  }
  const target = await ctx.targets.database();
  const rows = sanitizeRows(await target.query(step.sql, bindParameters(step.params, ctx.values)));
  const findings = evaluateFindings(
    step.findings,
    rows,
    step.id,
    ctx.values,
    ctx.runbook.parameters,
  );
  const metrics: Metrics = {};
  for (const [k, v] of Object.entries(rows[0] ?? {})) if (typeof v === 'number') metrics[k] = v;
  const unmeasured = headlineGaps(step.title, rows[0]);
  return { metrics, findings, unmeasured };
}

/**
 * The metrics step once more, where the run must go on whatever it says (after a kill, which
 * must be recorded): a failing query leaves the status unknown, not the run. The server going
 * away (a TargetError) ends the run only when the actions needed it: after a restart through
 * kubectl, an unreachable database is health unknown, with the reason. `when` says which
 * measurement: "after the kill".
 */
export async function measureOrUnknown(
  ctx: MeasureContext,
  when: string,
  opts: { databaseNeeded: boolean } = { databaseNeeded: true },
): Promise<Measurement> {
  try {
    return await measureServer(ctx);
  } catch (err) {
    if (err instanceof TargetError && opts.databaseNeeded) throw err;
    const reason =
      err instanceof TargetError
        ? `the database ${when}: ${err.message}`
        : `the measurement ${when} failed (${(err as Error).message})`;
    return { metrics: {}, findings: [] as Finding[], unmeasured: [reason] };
  }
}
