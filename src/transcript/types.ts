/** One transcript line. `type` names the event; the rest depends on it. */
export interface TranscriptEvent {
  type:
    | 'session.start'
    | 'step.start'
    | 'step.result'
    | 'finding'
    | 'prompt'
    | 'action'
    | 'note'
    | 'manual'
    | 'metrics'
    | 'session.end';
  [key: string]: unknown;
}

/** Append-only incident log. Every `append` is on disk (fsynced) when it returns. */
export interface Transcript {
  readonly path: string;
  readonly incident: string;
  append(event: TranscriptEvent): void;
  /** Writes `session.end` once; later calls do nothing. */
  end(status: string, exitCode: number): void;
}
