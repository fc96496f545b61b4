import { poolctlVersion } from '../version.js';
import type { IO } from './io.js';
import type { ActionRecord } from '../wizard/mitigation.js';
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
  command: string;
  runbook: string;
  incident: string;
  status: HealthStatus;
  targets: JsonReport['targets'];
  result?: PhaseResult;
  actions?: ActionRecord[];
  metrics?: Metrics;
  suggestions?: Suggestion[];
  transcript: string;
}): JsonReport {
  const steps = input.result?.steps ?? [];
  return {
    poolctl: poolctlVersion(),
    command: input.command,
    runbook: input.runbook,
    incident: input.incident,
    status: input.status,
    targets: input.targets,
    steps: steps.map((s) => ({
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
    findings: input.result?.findings ?? [],
    actions: (input.actions ?? []).map((a) => ({
      id: a.id,
      title: a.title,
      kind: a.kind,
      mode: a.mode,
      executed: a.executed,
      dryRun: a.dryRun,
      declined: a.declined,
      answeredBy: a.answeredBy,
      victims: a.victims,
      results: a.results,
      spared: a.spared,
      ...(a.command !== undefined ? { command: a.command } : {}),
      before: a.before,
      after: a.after,
      stoppedEarly: a.stoppedEarly,
    })),
    suggested: input.suggestions ?? [],
    manual: steps
      .filter((s) => s.manual !== undefined)
      .map((s) => ({
        step: s.id,
        title: s.title,
        command: s.command ?? '',
        status: s.manual ?? 'pending',
      })),
    metrics: input.metrics ?? input.result?.metrics ?? {},
    transcript: input.transcript,
  };
}

/** The document on stdout: indented for a person at a terminal, compact for a program. */
export function writeReport(io: IO, report: JsonReport): void {
  io.out.write(`${io.isStdoutTTY ? JSON.stringify(report, null, 2) : JSON.stringify(report)}\n`);
}
