/**
 * Ctrl-C policy. Outside a critical section the top-level handler closes the transcript and exits
 * 130 at once. Inside one (a kill in flight) the interrupt is only noted: the batch in flight
 * finishes, its outcome is recorded, and the kill stops before the next batch. A second Ctrl-C
 * exits at once.
 */
let depth = 0;
let requested = false;

export function interruptRequested(): boolean {
  return requested;
}

/** Called by the SIGINT handler; returns true when the interrupt was deferred. */
export function deferInterrupt(): boolean {
  if (depth > 0 && !requested) {
    requested = true;
    return true;
  }
  return false;
}

export async function critical<T>(fn: () => Promise<T>): Promise<T> {
  depth++;
  try {
    return await fn();
  } finally {
    depth--;
  }
}
