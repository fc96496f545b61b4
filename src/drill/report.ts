import { sanitizeInline } from '../io/sanitize.js';
import { DRILL_KINDS, KIND_LABEL, type DrillKind, type ExternalEvent } from './types.js';

/** `22 idle (api), 7 idle in transaction (worker), 7 long (batch)`; kinds with 0 left out. */
export function describeCounts(
  counts: Record<DrillKind, number>,
  applications: Record<DrillKind, string>,
): string {
  return DRILL_KINDS.filter((k) => counts[k] > 0)
    .map((k) => `${counts[k]} ${KIND_LABEL[k]} (${applications[k]})`)
    .join(', ');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Sessions ended or cancelled from outside (poolctl mitigate, pg_terminate_backend, a timeout)
 * arrive one by one, often hundreds at once: they are reported as one line per reason, a moment
 * after the last of a burst.
 */
export class ExternalReporter {
  private pending = new Map<string, { event: ExternalEvent; kinds: Map<DrillKind, number> }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (line: string) => void,
    private readonly stillHeld: () => number,
    private readonly delayMs = 150,
  ) {}

  add(event: ExternalEvent): void {
    const key = `${event.what}\u0000${event.reason}`;
    const entry = this.pending.get(key) ?? { event, kinds: new Map<DrillKind, number>() };
    entry.kinds.set(event.session.kind, (entry.kinds.get(event.session.kind) ?? 0) + 1);
    this.pending.set(key, entry);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    for (const { event, kinds } of this.pending.values()) {
      const n = [...kinds.values()].reduce((a, b) => a + b, 0);
      const which = DRILL_KINDS.filter((k) => kinds.has(k))
        .map((k) => `${kinds.get(k)} ${KIND_LABEL[k]}`)
        .join(', ');
      const reason = sanitizeInline(event.reason);
      this.write(
        event.what === 'ended'
          ? `${plural(n, 'session')} ended from outside (${which}): ${reason}; holding ${this.stillHeld()}`
          : `${plural(n, 'long statement')} cancelled from outside: ${reason}; ` +
              `${n === 1 ? 'its session stays' : 'their sessions stay'} connected, idle`,
      );
    }
    this.pending.clear();
  }
}
