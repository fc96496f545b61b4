/** One transcript line. `type` names the event; the rest depends on it. */
export interface TranscriptEvent {
  type:
    | 'session.start'
    | 'step.start'
    | 'step.result'
    | 'finding'
    | 'prompt'
    | 'intent'
    | 'outcome'
    | 'action'
    | 'note'
    | 'manual'
    | 'metrics'
    | 'session.end';
  [key: string]: unknown;
}

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
