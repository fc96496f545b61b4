/**
 * The transcript's events, one type per line kind. The writer accepts only these, the reader
 * returns only these (normalised from older files), and the exporters read their fields by name:
 * a renamed field is a compile error, not an export that silently shows nothing.
 *
 * Field types come from the code that records them (a finding is the wizard's Finding, a victim
 * the target's Session), so the record and the thing recorded cannot drift apart.
 */
import type { VictimResult } from '../safety/kill.js';
import type { Session } from '../targets/types.js';
import type { ActionRecord } from '../wizard/mitigation.js';
import type { Finding } from '../wizard/model.js';

/**
 * The version of the event shapes, written in every `session.start`. Raise it when a field is
 * renamed or changes meaning, and teach the reader (normalize.ts) to read the older shape.
 * Files written before the version existed read as schema 0.
 */
export const TRANSCRIPT_SCHEMA = 1;

/** Who answered a question: the operator at the terminal, or a flag / the lack of a terminal. */
export type AnsweredBy = 'operator' | '--yes' | '--dry-run' | 'non-interactive';

export interface SessionStartEvent {
  type: 'session.start';
  schema: number;
  command: string;
  argv: string[];
  runbook: string;
  /** Target labels (`postgres://app@db1:5432/app`), credentials removed. */
  targets: string[];
  poolctl: string;
  mode: 'interactive' | 'non-interactive';
  /** `--set` values as given. */
  parameters: Record<string, string>;
  operator?: { user: string; host: string };
}

export interface StepStartEvent {
  type: 'step.start';
  step: string;
  title: string;
  kind: string;
  phase: string;
}

export interface StepResultEvent {
  type: 'step.result';
  step: string;
  status: 'ok' | 'failed' | 'skipped';
  durationMs: number;
  /** All rows the step returned; `rows` holds the first of them. */
  rowCount?: number;
  rows?: Record<string, unknown>[];
  error?: string;
}

export type FindingEvent = { type: 'finding' } & Finding;

export interface PromptEvent {
  type: 'prompt';
  question: string;
  answer: string;
  answeredBy: AnsweredBy;
  /** The step the question was about (an action's approval); absent for the wizard's menus. */
  step?: string;
}

/** What a destructive step is about to do to whom; committed (fsynced) before it acts. */
export interface IntentEvent {
  type: 'intent';
  step: string;
  title: string;
  mode: 'cancel' | 'terminate';
  /** Terminating what a cancel did not end. */
  escalation?: boolean;
  approvedBy?: AnsweredBy;
  victims: Session[];
}

/** One batch's results of a kill, as they come. */
export interface OutcomeEvent {
  type: 'outcome';
  step: string;
  mode: 'cancel' | 'terminate';
  results: VictimResult[];
}

/**
 * What a change (kubectl, a database setting) is about to do, committed before it runs: the exact
 * argv of every command, or the setting with its value now and the new one.
 */
export interface ChangeIntentEvent {
  type: 'change.intent';
  step: string;
  title: string;
  target: 'kubernetes' | 'database';
  approvedBy?: AnsweredBy;
  commands?: string[][];
  setting?: { name: string; current: string; next: string; statement: string };
}

/** One command's or statement's result, as it comes; `confirmed` is the effect seen afterwards. */
export interface ChangeOutcomeEvent {
  type: 'change.outcome';
  step: string;
  command: string[];
  status: 'done' | 'failed' | 'confirmed' | 'not-confirmed';
  detail?: string;
}

/** A mitigation, whatever became of it; `outcomes` counts `results` by outcome. */
export type ActionEvent = { type: 'action' } & Omit<ActionRecord, 'command' | 'measured'> & {
    outcomes: Record<string, number>;
  };

export interface NoteEvent {
  type: 'note';
  step?: string;
  text: string;
}

/** A step the operator does by hand, with its exact command. */
export interface ManualEvent {
  type: 'manual';
  step: string;
  command: string;
  status: 'pending' | 'done' | 'skipped';
}

export interface MetricsEvent {
  type: 'metrics';
  /** What took the measurement: the phase (`diagnose`, `verify`). */
  label: string;
  metrics: Record<string, number>;
}

export interface SessionEndEvent {
  type: 'session.end';
  status: string;
  /** Always written; null only when an old or damaged line has none (never read as 0). */
  exitCode: number | null;
}

/** One event as the code records it; the writer adds the stamp. */
export type TranscriptEvent =
  | SessionStartEvent
  | StepStartEvent
  | StepResultEvent
  | FindingEvent
  | PromptEvent
  | IntentEvent
  | OutcomeEvent
  | ChangeIntentEvent
  | ChangeOutcomeEvent
  | ActionEvent
  | NoteEvent
  | ManualEvent
  | MetricsEvent
  | SessionEndEvent;

export type EventType = TranscriptEvent['type'];

/**
 * A line whose `type` this version does not know (written by a newer poolctl): kept, with its
 * fields, and shown as unknown rather than failing the whole file.
 */
export interface UnknownEvent {
  type: 'unknown';
  recordedType: string;
  fields: Record<string, unknown>;
}

/** What the writer adds to every event. */
export interface Stamp {
  /** ISO time, UTC; '' when an old or damaged line has none. */
  ts: string;
  incident: string;
  /** This run's id; absent in files written before two runs could share one. */
  run?: string;
}

/** One event as read back from a file. */
export type RecordedEvent = (TranscriptEvent | UnknownEvent) & Stamp;

/** Append-only incident log (src/transcript/writer.ts). */
export interface Transcript {
  readonly path: string;
  readonly incident: string;
  /** Why nothing is being recorded (the file could not be opened or written); undefined while it is. */
  readonly unrecorded: string | undefined;
  /** The exit code `end` recorded; undefined until then. */
  readonly exitCode: number | undefined;
  /** Best effort: a failure warns once and stops the recording; it never throws. */
  append(event: TranscriptEvent): void;
  /**
   * Written and fsynced when it returns, or throws a TranscriptError (exit 2): the record a
   * destructive step must have before it acts (its intent).
   */
  commit(event: TranscriptEvent): void;
  /** Writes `session.end` once; later calls do nothing. */
  end(status: string, exitCode: number): void;
}
