/**
 * Ctrl-C policy. Outside a critical section the top-level handler closes the transcript and exits
 * 130 at once. Inside one (a destructive step in flight) the interrupt only aborts `signal`: the
 * batch or command in flight finishes, its outcome is recorded, and the step stops before the
 * next one. A second Ctrl-C exits at once. One gate per run, made by the CLI and passed down.
 */
export class InterruptGate {
  private readonly controller = new AbortController();
  private depth = 0;

  /** Aborted by a Ctrl-C that came during a critical section: stop before the next batch. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Called by the SIGINT handler; true when the interrupt was deferred to the critical section. */
  defer(): boolean {
    if (this.depth > 0 && !this.controller.signal.aborted) {
      this.controller.abort();
      return true;
    }
    return false;
  }

  async critical<T>(fn: () => Promise<T>): Promise<T> {
    this.depth++;
    try {
      return await fn();
    } finally {
      this.depth--;
    }
  }
}
