import type { Finding, HealthStatus, Metrics, PhaseResult } from '../wizard/model.js';
import type { Suggestion } from './diagnose-view.js';

/** The one JSON document of `--output json`, as DESIGN.md's contract spells it. */
export interface JsonReport {
  poolctl: string;
  command: string;
  runbook: string;
  incident: string;
  status: HealthStatus;
  targets: { engine: string; label: string; version: string }[];
  steps: object[];
  findings: Finding[];
  actions: object[];
  suggested: Suggestion[];
  manual: { step: string; title: string; command: string; status: string }[];
  metrics: Metrics;
  transcript: string;
}

export function buildReport(input: {
  version: string;
  command: string;
  runbook: string;
  incident: string;
  status: HealthStatus;
  targets: JsonReport['targets'];
  result: PhaseResult;
  suggestions: Suggestion[];
  transcript: string;
}): JsonReport {
  const { result } = input;
  return {
    poolctl: input.version,
    command: input.command,
    runbook: input.runbook,
    incident: input.incident,
    status: input.status,
    targets: input.targets,
    steps: result.steps.map((s) => ({
      id: s.id,
      title: s.title,
      kind: s.kind,
      status: s.status,
      durationMs: s.durationMs,
      ...(s.rows ? { rows: s.rows } : {}),
      ...(s.error ? { error: s.error } : {}),
      ...(s.command !== undefined ? { command: s.command, manual: s.manual } : {}),
      ...(s.note ? { note: s.note } : {}),
      findings: s.findings.map((f) => f.id),
    })),
    findings: result.findings,
    actions: [],
    suggested: input.suggestions,
    manual: result.steps
      .filter((s) => s.manual !== undefined)
      .map((s) => ({
        step: s.id,
        title: s.title,
        command: s.command ?? '',
        status: s.manual ?? 'pending',
      })),
    metrics: result.metrics,
    transcript: input.transcript,
  };
}
