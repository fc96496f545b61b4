import type { Capacity, EscalationReport, RootCause, UncheckedCause } from '../wizard/prevent.js';
import type { Sides } from '../wizard/sides.js';
import { redactText, redactValue } from '../transcript/redact.js';
import { poolctlVersion } from '../version.js';
import type { Transcript } from '../transcript/types.js';
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
  /** `unknown` when the run failed before it could measure (then `error` says why). */
  status: HealthStatus | 'unknown';
  /** `version` is absent when the run never reached the database (a kubectl action only). */
  targets: { kind: string; engine?: string; label: string; version?: string }[];
  steps: object[];
  findings: Finding[];
  actions: object[];
  suggested: Suggestion[];
  /** `flag`: what would let poolctl run the step itself (`--prometheus URL`). */
  manual: { step: string; title: string; command: string; flag?: string; status: string }[];
  metrics: Metrics;
  /** Which side is exhausted (`server`, `application`, `both`, `neither`), from diagnose. */
  exhausted?: string;
  /** The sides measured: `database`, and `application` when Prometheus was given. */
  checked?: string[];
  /** Where the transcript was meant to be (as given or by default). */
  /** RUNBOOK-006 Root Cause Analysis: each cause with its evidence and fix (diagnose, prevent). */
  root_causes?: RootCause[];
  /** Root causes whose evidence could not be read (not "none"), with why. */
  root_causes_unchecked?: UncheckedCause[];
  /** prevent: the capacity formula's numbers, when it could be computed. */
  capacity?: Capacity;
  /** The runbook's escalation, when the state stays critical after the mitigation. */
  escalation?: EscalationReport;
  transcript: string;
  /**
   * Present only when that file does not hold this run's record: why it could not be written
   * (read-only directory, full disk). The path stays, so a script can still name the place.
   */
  transcript_unrecorded?: string;
  /** Why the run failed: the exit code, its name and the one line printed on stderr. */
  error?: { code: number; kind: string; message: string };
}

export function buildReport(input: {
  command: string;
  runbook: string;
  incident: string;
  status: HealthStatus;
  targets: JsonReport['targets'];
  result?: PhaseResult;
  /** The findings behind `status` when no phase ran (mitigate --action): its last measurement's. */
  findings?: Finding[];
  actions?: ActionRecord[];
  metrics?: Metrics;
  suggestions?: Suggestion[];
  sides?: Sides;
  transcript: Pick<Transcript, 'path' | 'unrecorded'>;
  /** A target that refused the run, when that is its exit code (3): the one line on stderr. */
  error?: { exitCode: number; message: string };
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
    findings: input.findings ?? input.result?.findings ?? [],
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
      ...(a.unavailable !== undefined ? { unavailable: a.unavailable } : {}),
      ...(a.commands !== undefined ? { commands: a.commands } : {}),
      ...(a.setting !== undefined ? { setting: a.setting } : {}),
      ...(a.capacity !== undefined ? { capacity: a.capacity } : {}),
      before: a.before,
      after: a.after,
      ...(a.settle !== undefined ? { settle: a.settle } : {}),
      stoppedEarly: a.stoppedEarly,
    })),
    suggested: input.suggestions ?? [],
    manual: steps
      .filter((s) => s.manual !== undefined)
      .map((s) => ({
        step: s.id,
        title: s.title,
        command: s.command ?? '',
        ...(s.flag ? { flag: s.flag } : {}),
        status: s.manual ?? 'pending',
      })),
    metrics: input.metrics ?? input.result?.metrics ?? {},
    ...(input.sides ? { exhausted: input.sides.side, checked: input.sides.checked } : {}),
    ...transcriptFields(input.transcript),
    ...(input.error
      ? {
          error: {
            code: input.error.exitCode,
            kind: KIND[input.error.exitCode] ?? 'error',
            message: redactText(input.error.message),
          },
        }
      : {}),
  };
}

// One process, one run, one document: set when the command printed its report, so that a failure
// after it (the transcript's disk filled up at the end) does not print a second one.
let reportWritten = false;

/** The document on stdout: indented for a person at a terminal, compact for a program. */
export function writeReport(io: IO, report: JsonReport): void {
  reportWritten = true;
  // A password can come back in anything a run echoes: a by-hand step's command built from
  // a `--set` value such as `https://user:pw@…`, a query's text. The document hides them as the
  // transcript does.
  const safe = redactValue(report);
  io.out.write(`${io.isStdoutTTY ? JSON.stringify(safe, null, 2) : JSON.stringify(safe)}\n`);
}

const KIND: Record<number, string> = {
  1: 'internal',
  2: 'usage',
  3: 'target',
  4: 'unhealthy',
  5: 'declined',
  130: 'interrupted',
};

/**
 * For a run that failed before its command printed a report (a usage error, a target that
 * refused, a bug, Ctrl-C): the same document with `status: unknown`, what is known of the run,
 * and `error`, so that `poolctl … --output json > out.json` never leaves an empty file.
 */
export function writeErrorReport(
  out: { write(text: string): unknown; isTTY?: boolean },
  run: {
    argv: string[];
    code: number;
    message: string;
    incident?: string;
    transcript?: Pick<Transcript, 'path' | 'unrecorded'>;
  },
): void {
  if (reportWritten) return;
  reportWritten = true;
  const report: JsonReport = {
    poolctl: poolctlVersion(),
    command: commandOf(run.argv),
    runbook: '',
    incident: run.incident ?? '',
    status: 'unknown',
    targets: [],
    steps: [],
    findings: [],
    actions: [],
    suggested: [],
    manual: [],
    metrics: {},
    ...transcriptFields(run.transcript ?? { path: '', unrecorded: undefined }),
    error: {
      code: run.code,
      kind: KIND[run.code] ?? 'error',
      message: redactText(run.message),
    },
  };
  out.write(`${out.isTTY ? JSON.stringify(report, null, 2) : JSON.stringify(report)}\n`);
}

function transcriptFields(t: Pick<Transcript, 'path' | 'unrecorded'>) {
  return {
    transcript: t.path,
    ...(t.unrecorded !== undefined ? { transcript_unrecorded: t.unrecorded } : {}),
  };
}

/** `diagnose`, `transcript export`: the words before the first flag (at most two). */
function commandOf(argv: string[]): string {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-') || words.length === 2) break;
    words.push(a);
    if (a !== 'runbooks' && a !== 'transcript') break;
  }
  return words.join(' ');
}
