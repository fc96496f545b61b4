import type { Severity, StepKind } from '../runbook/types.js';
import type { Row } from '../targets/types.js';

/**
 * `unknown`: the phase could not make the measurement a status needs (its metrics step failed,
 * returned no row or lacked the headline columns; a verify check could not run). DESIGN.md's
 * healthy | warning | critical each claim something about the server; `unknown` claims nothing,
 * so a missing number can never read as healthy.
 */
export type HealthStatus = 'healthy' | 'warning' | 'critical' | 'unknown';

/** A finding rule that fired, with its message filled in. */
export interface Finding {
  id: string;
  severity: Severity;
  message: string;
  step: string;
  suggest: string[];
  /** How many rows matched: the sessions behind the finding. */
  count: number;
  /** Evidence of a leak: its actions go first among findings of its severity (src/wizard/rank.ts). */
  leads?: boolean;
  /**
   * A lower-threshold hint (src/wizard/hints.ts): the `--set` that lets `action` match what it
   * counts. Never applied by itself: a lower threshold selects more victims, the operator's call.
   */
  hint?: ThresholdSuggestion;
}

/** The parameter value a lower-threshold hint found, for the action that uses the parameter. */
export interface ThresholdSuggestion {
  action: string;
  param: string;
  /** The value as the parameter holds it (a duration in seconds). */
  value: number;
  /** `kill_idle_after=6s`: what follows `--set`. */
  set: string;
  /** What it would select: `6 orders sessions idle > 6s`. */
  matches: string;
}

/** What one step did, as the JSON document and the transcript record it. */
export interface StepOutcome {
  id: string;
  title: string;
  why: string;
  kind: StepKind;
  status: 'ok' | 'failed' | 'skipped';
  durationMs: number;
  rows?: Row[];
  findings: Finding[];
  error?: string;
  /**
   * Steps done by hand (manual ones, and those whose target poolctl does not have): the exact
   * command lines for the operator and whether it was done.
   */
  command?: string;
  /** The flag that would let poolctl run the step itself (`--prometheus URL`). */
  flag?: string;
  manual?: 'pending' | 'done' | 'skipped';
  note?: string;
}

/** The headline numbers: utilization_percent, busy_percent, connections, active, idle, … */
export type Metrics = Record<string, number>;

export interface PhaseResult {
  steps: StepOutcome[];
  findings: Finding[];
  metrics: Metrics;
  /** True when the operator quit the phase before every step ran. */
  stoppedEarly: boolean;
  /** Why a status cannot be given: each measurement the phase needed and could not make. */
  unmeasured: string[];
}

const ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/**
 * A critical finding stands whatever else is missing; otherwise a measurement that could not be
 * made leaves the status unknown, never healthy.
 */
export function healthOf(result: Pick<PhaseResult, 'findings' | 'unmeasured'>): HealthStatus {
  const { findings } = result;
  if (findings.some((f) => f.severity === 'critical')) return 'critical';
  if (result.unmeasured.length > 0) return 'unknown';
  if (findings.some((f) => f.severity === 'warning')) return 'warning';
  return 'healthy';
}

/** The warning that says why a status is unknown: one per measurement that could not be made. */
export function notMeasured(reason: string, step: string): Finding {
  return {
    id: 'not-measured',
    severity: 'warning',
    message: `${reason}: poolctl gives no status it could not measure`,
    step,
    suggest: [],
    count: 0,
  };
}

/** The columns every metrics step must return for a status to be given from it. */
export const HEADLINE_COLUMNS = ['utilization_percent', 'connections', 'usable_connections'];

/** What a metrics step's first row lacks for a status: the row itself, or a headline number. */
export function headlineGaps(
  stepTitle: string,
  row: Record<string, unknown> | undefined,
): string[] {
  if (!row) return [`"${stepTitle}" returned no row`];
  const missing = HEADLINE_COLUMNS.filter((c) => typeof row[c] !== 'number');
  return missing.length > 0 ? [`"${stepTitle}" returned no number for ${missing.join(', ')}`] : [];
}

export function bySeverity(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => ORDER[a.severity] - ORDER[b.severity]);
}
