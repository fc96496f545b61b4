import type { DatabaseTargetSpec } from '../targets/types.js';

/**
 * The drill's engine seam: what it takes to hold one session of each kind on a server. One module
 * per engine beside this file (postgres.ts, mysql.ts); `loadDrillEngine` picks it by
 * `spec.engine`, so the command itself never asks which engine it talks to.
 */

/** The three ways a session holds a connection slot in the seeds' stories. */
export type DrillKind = 'idle' | 'idleInTx' | 'long';

export const DRILL_KINDS: readonly DrillKind[] = ['idle', 'idleInTx', 'long'];

/** For screens: `idle`, `idle in transaction`, `long`. */
export const KIND_LABEL: Record<DrillKind, string> = {
  idle: 'idle',
  idleInTx: 'idle in transaction',
  long: 'long',
};

export interface OpenRequest {
  kind: DrillKind;
  /** application_name (PostgreSQL) or program_name (MySQL) of the session. */
  application: string;
  /** How long a long session's statement runs unless released first, in seconds. */
  longSeconds: number;
  /** Something outside the drill changed the session: terminated it, cancelled its statement. */
  onExternal: (event: ExternalEvent) => void;
}

export interface ExternalEvent {
  session: DrillSession;
  /** `ended`: the connection is gone; `statement-ended`: a long statement stopped, still connected. */
  what: 'ended' | 'statement-ended';
  /** The server's words, e.g. "terminating connection due to administrator command". */
  reason: string;
}

/** One held connection, already in its state (idle, idle in a transaction, running a statement). */
export interface DrillSession {
  readonly kind: DrillKind;
  /** Backend pid (PostgreSQL) or connection id (MySQL). */
  readonly pid: number;
  readonly application: string;
  /**
   * Ends the session so that the server frees its slot now: a running statement is cancelled on
   * the server first (dropping the socket would leave a sleeping backend holding the slot).
   * Never throws; bounded in time.
   */
  release(): Promise<void>;
}

export interface DrillEngine {
  /** Connects one session and puts it in its state; rejects with the driver's error. */
  open(request: OpenRequest): Promise<DrillSession>;
  /** True when a connect error means the server has no slot left (SQLSTATE 53300, MySQL 1040). */
  isOutOfSlots(err: unknown): boolean;
  /** A failed connect as the one-line error the other commands print (exit 3). */
  connectError(err: unknown): Error;
  /** The driver's message for an error, for one-line reports. */
  messageOf(err: unknown): string;
}

/** Loads the drill module of the target's engine; each driver loads only when used. */
export type DrillEngineLoader = (spec: DatabaseTargetSpec) => Promise<DrillEngine>;
