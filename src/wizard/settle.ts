/**
 * The read after a kill, taken once the server has settled. A kill is confirmed the instant its
 * victims are gone from the server's list; an application whose pool reconnects at once fills the
 * freed slots again within milliseconds, so a read taken at that instant calls the server healthy
 * while it is not. The status is judged from a read `settle_after` later; a read at once beside it
 * counts the connections that came back: an application that refills what was killed is the
 * leak's signature, and the fix is a restart or a rollback, not another kill.
 */
import { formatDuration } from '../runbook/params.js';
import type { ParameterValues, TerminateStep } from '../runbook/types.js';
import { measureOrUnknown, type MeasureContext, type Measurement } from './measure.js';
import type { Finding } from './model.js';

/** What a runbook that does not declare `settle_after` waits: the default of the shipped ones. */
export const DEFAULT_SETTLE_S = 2;

/** Where the status after a kill comes from: when it was read, and what came back meanwhile. */
export interface SettleRecord {
  /** Seconds between the kill's confirmation and the read the status is judged from. */
  afterS: number;
  /** Connections before the kill less those it terminated: what the kill left. */
  connectionsLeft?: number;
  /**
   * Connections a read right after the kill's confirmation counted: clients that reconnect at
   * once are often back already (absent when it could not be made).
   */
  connectionsAtOnce?: number;
  /** Connections the settled read counted: the status's. */
  connectionsAfter?: number;
  /** The settled read's connections above what the kill left (or the read at once, if lower). */
  newConnections?: number;
}

/** `settle_after` in seconds: the runbook's (or --set) value, else DEFAULT_SETTLE_S. */
export function settleSeconds(values: ParameterValues): number {
  const given = values.settle_after;
  const n = given === undefined ? NaN : Number(given);
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_SETTLE_S;
}

export interface SettleContext extends MeasureContext {
  signal: AbortSignal;
}

/**
 * Reads the metrics step at once, waits `settle_after`, and reads it again: the second read is
 * the measurement, with a warning when the connections came back. Ctrl-C ends the wait at once
 * (the kill's outcomes are already recorded); the run then measures nothing more.
 */
export async function measureSettled(
  ctx: SettleContext,
  step: TerminateStep,
  terminated: number,
  before: number | undefined,
): Promise<{ measured: Measurement; settle: SettleRecord }> {
  const afterS = settleSeconds(ctx.values);
  const noun = step.mode === 'cancel' ? 'cancel' : 'kill';
  if (afterS === 0) {
    return { measured: await measureOrUnknown(ctx, `after the ${noun}`), settle: { afterS } };
  }
  // The read at once is evidence only: its failure leaves the reconnects uncounted, not the run.
  const atOnce = await measureOrUnknown(ctx, `right after the ${noun}`, { databaseNeeded: false });
  await pause(afterS * 1000, ctx.signal);
  const settle: SettleRecord = {
    afterS,
    ...(before !== undefined && { connectionsLeft: Math.max(0, before - terminated) }),
    connectionsAtOnce: atOnce.metrics.connections,
  };
  // Never the read at once in its place: that is the one that flatters.
  const reason = `interrupted during the ${formatDuration(afterS)} wait after the ${noun}`;
  if (ctx.signal.aborted)
    return { measured: { metrics: {}, findings: [], unmeasured: [reason] }, settle };
  const measured = await measureOrUnknown(ctx, `${formatDuration(afterS)} after the ${noun}`);
  settle.connectionsAfter = measured.metrics.connections;
  // Not the read at once alone: by then the fastest clients are back (measured: 18 of 29 on
  // MariaDB). A client that left meanwhile lowers the read at once below what the kill left.
  const baselines = [settle.connectionsLeft, settle.connectionsAtOnce].filter(
    (n): n is number => n !== undefined,
  );
  if (baselines.length > 0 && settle.connectionsAfter !== undefined) {
    settle.newConnections = Math.max(0, settle.connectionsAfter - Math.min(...baselines));
  }
  const known = new Set(ctx.runbook.actions.map((a) => a.id));
  const refill = refilled(settle, terminated, step.id, known);
  return { measured: refill ? withFinding(measured, refill) : measured, settle };
}

/**
 * The warning that the clients came back: at least half as many new connections as sessions
 * terminated within the settle. Below that, churn of other clients is as likely a cause.
 */
export function refilled(
  settle: SettleRecord,
  terminated: number,
  step: string,
  known: Set<string>,
): Finding | null {
  const back = settle.newConnections ?? 0;
  if (terminated === 0 || back === 0 || back * 2 < terminated) return null;
  const within = formatDuration(settle.afterS);
  return {
    id: 'refilled-after-kill',
    severity: 'warning',
    message:
      `${back} new connections within ${within} of terminating ${terminated} (${counts(settle)}): ` +
      'the application reconnects what is killed, ' +
      'as a leaking pool does; restart or roll back the application (restart-app, rollback-app) rather than kill again',
    step,
    suggest: ['restart-app', 'rollback-app'].filter((id) => known.has(id)),
    count: back,
  };
}

/** "the kill left 0, 18 back when it was confirmed, 29 after 2s" */
function counts(settle: SettleRecord): string {
  const parts: string[] = [];
  if (settle.connectionsLeft !== undefined) parts.push(`the kill left ${settle.connectionsLeft}`);
  if (settle.connectionsAtOnce !== undefined)
    parts.push(`${settle.connectionsAtOnce} at its confirmation`);
  parts.push(`${settle.connectionsAfter} after ${formatDuration(settle.afterS)}`);
  return parts.join(', ');
}

function withFinding(measured: Measurement, finding: Finding): Measurement {
  return { ...measured, findings: [...measured.findings, finding] };
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
