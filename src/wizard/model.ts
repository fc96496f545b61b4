import type { Severity, StepKind } from '../runbook/types.js';
import type { Row } from '../targets/types.js';

export type HealthStatus = 'healthy' | 'warning' | 'critical';

/** A finding rule that fired, with its message filled in. */
export interface Finding {
  id: string;
  severity: Severity;
  message: string;
  step: string;
  suggest: string[];
  /** How many rows matched: the sessions behind the finding. */
  count: number;
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
  /** Manual steps: the exact command for the operator and whether it was done. */
  command?: string;
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
}

const ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

export function healthOf(findings: Finding[]): HealthStatus {
  if (findings.some((f) => f.severity === 'critical')) return 'critical';
  if (findings.some((f) => f.severity === 'warning')) return 'warning';
  return 'healthy';
}

export function bySeverity(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => ORDER[a.severity] - ORDER[b.severity]);
}

/**
 * Action ids suggested by the findings, each once: most severe finding first, and among equals
 * the one behind the most sessions, since its action frees the most connections.
 */
export function suggestedActions(findings: Finding[]): string[] {
  const ranked = [...findings].sort(
    (a, b) => ORDER[a.severity] - ORDER[b.severity] || b.count - a.count,
  );
  const ids: string[] = [];
  for (const f of ranked) for (const id of f.suggest) if (!ids.includes(id)) ids.push(id);
  return ids;
}
