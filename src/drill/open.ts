import { TargetError } from '../errors.js';
import {
  DRILL_KINDS,
  type DrillEngine,
  type DrillKind,
  type DrillSession,
  type ExternalEvent,
} from './types.js';

/** What to open, engine-agnostic. */
export interface DrillPlan {
  counts: Record<DrillKind, number>;
  applications: Record<DrillKind, string>;
  /** Connects in flight at once: a thousand simultaneous ones time out on a small machine. */
  batchSize: number;
  /** How long a long session's statement runs unless released, in seconds. */
  longSeconds: number;
}

export interface OpenHooks {
  /** Sessions join this set as they open; the caller removes those that end from outside. */
  held: Set<DrillSession>;
  onExternal: (event: ExternalEvent) => void;
  /** After each batch: how many are open, of how many. */
  progress: (opened: number, total: number) => void;
  /** Checked between batches: Ctrl-C while opening stops after the batch in flight. */
  stopRequested: () => boolean;
  /** The target's label, for the already-full message. */
  label: string;
}

export interface OpenOutcome {
  /** The server's message when it ran out of slots part-way; the sessions opened are held. */
  outOfSlots?: string;
  /** Stopped early by Ctrl-C. */
  stopped: boolean;
}

/**
 * Opens the plan's sessions in bounded batches, the kinds interleaved in proportion so that a
 * drill the server cannot take in full still holds the mix asked for. Running out of slots
 * part-way is the exhaustion the drill is for: the opened sessions stay held. Any other connect
 * error releases what was opened and throws the engine's one-line error.
 */
export async function openSessions(
  engine: DrillEngine,
  plan: DrillPlan,
  hooks: OpenHooks,
): Promise<OpenOutcome> {
  const queue = interleave(plan.counts);
  const total = queue.length;
  const { held } = hooks;
  let size = plan.batchSize;
  while (queue.length > 0) {
    if (hooks.stopRequested()) return { stopped: true };
    const batch = queue.splice(0, size);
    const results = await Promise.allSettled(
      batch.map(async (kind) => {
        const session = await engine.open({
          kind,
          application: plan.applications[kind],
          longSeconds: plan.longSeconds,
          onExternal: hooks.onExternal,
        });
        held.add(session);
      }),
    );
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const fatal = errors.find((err) => !engine.isOutOfSlots(err));
    if (fatal !== undefined) {
      await releaseAll([...held], plan.batchSize);
      held.clear();
      throw engine.connectError(fatal);
    }
    if (errors.length > 0 && size > 1) {
      // Near the limit, concurrent connects can all be refused while slots remain (on PostgreSQL
      // each new backend takes its slot before it checks the reserved ones). Fill what is left
      // one at a time, until the server says no to a connect of its own.
      queue.unshift(...batch.filter((_, i) => results[i]!.status === 'rejected'));
      size = 1;
    } else if (errors.length > 0) {
      if (held.size === 0) {
        throw new TargetError(
          `${hooks.label}: the server has no connection slot left for the drill ` +
            `("${engine.messageOf(errors[0])}"): it is exhausted already, there is nothing to add`,
        );
      }
      hooks.progress(held.size, total);
      return { outOfSlots: engine.messageOf(errors[0]), stopped: false };
    }
    hooks.progress(held.size, total);
  }
  return { stopped: false };
}

/** Releases sessions in bounded batches (a cancel is a connection to the server too). */
export async function releaseAll(sessions: DrillSession[], batchSize: number): Promise<void> {
  for (let start = 0; start < sessions.length; start += batchSize) {
    await Promise.all(sessions.slice(start, start + batchSize).map((s) => s.release()));
  }
}

/** Kinds in the order to open them: each kind spread evenly over the whole run. */
export function interleave(counts: Record<DrillKind, number>): DrillKind[] {
  const slots = DRILL_KINDS.flatMap((kind) =>
    Array.from({ length: counts[kind] }, (_, i) => ({ kind, at: (i + 0.5) / counts[kind] })),
  );
  // Array.prototype.sort is stable: ties keep the kinds' order (idle, idle in tx, long).
  return slots.sort((a, b) => a.at - b.at).map((s) => s.kind);
}
