import type { DatabaseTarget, KillMode, Protection, Session } from '../targets/types.js';

/**
 * `signalled` and `unknown` are provisional: a batch's signal was delivered but its effect not yet
 * confirmed, or the kill statement failed without telling whether it reached the server.
 */
export type VictimOutcome =
  | 'terminated'
  | 'cancelled'
  | 'already-gone'
  | 'spared'
  | 'still-there'
  | 'failed'
  | 'signalled'
  | 'unknown';

export interface VictimResult {
  pid: number;
  outcome: VictimOutcome;
  reason?: string;
}

export interface KillPlan {
  target: DatabaseTarget;
  sql: string;
  params: unknown[];
  mode: KillMode;
  victims: Session[];
  protection: Protection;
  /** Victims per statement. */
  batchSize?: number;
  /** How long to wait for signalled sessions to disappear. */
  timeoutMs?: number;
  pollMs?: number;
  /** Checked between batches: Ctrl-C finishes the batch in flight and stops there. */
  signal?: AbortSignal;
  /**
   * Told each batch's results as soon as its statement returns (delivered signals as
   * `signalled`), then the confirmed outcome of the signalled victims, so the caller can record
   * them as they come: a run killed in the middle leaves the outcomes of its finished batches.
   */
  onResults?: (results: VictimResult[]) => void;
}

export interface KillReport {
  results: VictimResult[];
  /** True when an interrupt stopped the kill before every batch ran. */
  stoppedEarly: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Signals the victims batch by batch (each batch one re-checking statement), then polls until
 * every signalled session is gone ("terminated" means gone) or the timeout passes. Each victim
 * gets its own outcome; one victim's failure never stops the others.
 */
export async function executeKill(plan: KillPlan): Promise<KillReport> {
  const batchSize = plan.batchSize ?? 1000;
  const timeoutMs = plan.timeoutMs ?? 5000;
  const pollMs = plan.pollMs ?? 5;
  const results = new Map<number, VictimResult>();
  const signalled: Session[] = [];
  let stoppedEarly = false;

  for (let i = 0; i < plan.victims.length; i += batchSize) {
    if (plan.signal?.aborted) {
      stoppedEarly = true;
      const rest = plan.victims.slice(i).map((s) => ({
        pid: s.pid,
        outcome: 'spared' as const,
        reason: 'interrupted before its batch',
      }));
      for (const r of rest) results.set(r.pid, r);
      plan.onResults?.(rest);
      break;
    }
    const batch = plan.victims.slice(i, i + batchSize);
    let outcome: Awaited<ReturnType<DatabaseTarget['signal']>>;
    try {
      outcome = await plan.target.signal({
        sql: plan.sql,
        params: plan.params,
        mode: plan.mode,
        sessions: batch,
        protection: plan.protection,
        // An adapter that sends one KILL at a time stops at Ctrl-C within the batch too.
        ...(plan.signal && { signal: plan.signal }),
      });
    } catch (err) {
      // The connection went (a restart, our session killed): whether this batch's statement ran
      // is unknown; the later batches were never sent. Record both, then let the error end the run.
      const reason = `the kill statement failed: ${err instanceof Error ? err.message : String(err)}`;
      plan.onResults?.([
        ...batch.map((s) => ({ pid: s.pid, outcome: 'unknown' as const, reason })),
        ...plan.victims.slice(i + batchSize).map((s) => ({
          pid: s.pid,
          outcome: 'spared' as const,
          reason: 'not signalled: the kill stopped at an error',
        })),
      ]);
      throw err;
    }
    const byPid = new Map(batch.map((s) => [s.pid, s]));
    const batchResults: VictimResult[] = [];
    for (const pid of outcome.signalled) {
      signalled.push(byPid.get(pid)!);
      batchResults.push({ pid, outcome: 'signalled' });
    }
    for (const pid of outcome.gone) batchResults.push({ pid, outcome: 'already-gone' });
    for (const { pid, reason } of outcome.spared)
      batchResults.push({ pid, outcome: 'spared', reason });
    for (const { pid, reason } of outcome.failed)
      batchResults.push({ pid, outcome: 'failed', reason });
    for (const r of batchResults) if (r.outcome !== 'signalled') results.set(r.pid, r);
    plan.onResults?.(batchResults);
    if (outcome.stoppedEarly) stoppedEarly = true;
  }

  const done: VictimOutcome = plan.mode === 'cancel' ? 'cancelled' : 'terminated';
  let waiting = signalled;
  const deadline = Date.now() + timeoutMs;
  while (waiting.length > 0) {
    const present = await plan.target.stillThere(waiting, plan.mode);
    for (const s of waiting)
      if (!present.has(s.pid)) results.set(s.pid, { pid: s.pid, outcome: done });
    waiting = waiting.filter((s) => present.has(s.pid));
    if (waiting.length === 0 || Date.now() >= deadline) break;
    await sleep(pollMs);
  }
  for (const s of waiting) {
    results.set(s.pid, {
      pid: s.pid,
      outcome: 'still-there',
      reason: `signalled, still there after ${timeoutMs / 1000}s`,
    });
  }
  plan.onResults?.(signalled.map((s) => results.get(s.pid)!));
  const ordered = plan.victims.map(
    (s) => results.get(s.pid) ?? { pid: s.pid, outcome: 'failed' as const, reason: 'no result' },
  );
  return { results: ordered, stoppedEarly };
}

const OUTCOME_ORDER: VictimOutcome[] = [
  'terminated',
  'cancelled',
  'already-gone',
  'spared',
  'still-there',
  'failed',
  'signalled',
  'unknown',
];

/** Counts per outcome in a fixed order, for summaries: { terminated: 15, spared: 1 }. */
export function countOutcomes(results: VictimResult[]): Partial<Record<VictimOutcome, number>> {
  const counts: Partial<Record<VictimOutcome, number>> = {};
  for (const outcome of OUTCOME_ORDER) {
    const n = results.filter((r) => r.outcome === outcome).length;
    if (n > 0) counts[outcome] = n;
  }
  return counts;
}
