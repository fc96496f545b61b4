import type { ConnectionOptions } from 'node:tls';
import type { Engine } from '../runbook/types.js';

/** A row as returned by a database; values are whatever the driver produced (numbers parsed). */
export type Row = Record<string, unknown>;

/** Facts about the connected server, used for the headline and for choosing SQL by version. */
export interface ServerInfo {
  engine: Engine;
  /** The server's product name for screens: PostgreSQL, MySQL, MariaDB. */
  product: string;
  version: string;
  /** Numeric version, e.g. 150018 for PostgreSQL 15.18, 101106 for MariaDB 10.11.6. */
  versionNum: number;
  /** Our own backend pid / connection id, excluded from every result. */
  ownSessionId: number;
  user: string;
}

/** One connection to one database server. Opened once per run; never a pool. */
export interface DatabaseTarget {
  readonly engine: Engine;
  /** A redacted description for screens and transcripts: `postgres://app@db:5432/app`. */
  readonly label: string;
  readonly info: ServerInfo;
  /** Runs one read-only statement with positional parameters bound by the driver. */
  query(sql: string, params: unknown[]): Promise<Row[]>;
  /**
   * Runs `read`, whose statements go through `query`, as of one view of the server's sessions,
   * where the engine keeps one per transaction (PostgreSQL reads its session table once per
   * transaction): the statements then agree with one another, and a server with 1,000 sessions
   * copies them once instead of once per statement. A statement that fails ends the shared
   * view; the next one starts another. Absent: each statement sees the server as it is then.
   */
  readTogether?<T>(read: () => Promise<T>): Promise<T>;
  /**
   * Runs one statement that changes the server (a change step's apply, after its intent is
   * recorded): `SET GLOBAL max_connections = ?`. Only the destructive path calls it.
   */
  change(sql: string, params: unknown[]): Promise<void>;
  /**
   * Runs a terminate step's candidate query and returns the sessions it selects, each marked
   * with whether its user is a superuser (protection needs it).
   */
  candidates(request: CandidateRequest): Promise<Session[]>;
  /**
   * Signals the shown sessions that still match, in as few statements as the engine allows,
   * re-checking each at execution time: same id and session token, still selected by the
   * candidate query, still not protected. Sessions that changed are returned as spared.
   */
  signal(request: SignalRequest): Promise<SignalResult>;
  /** Of these sessions, the ids still there: the same session, and for `cancel` the same statement. */
  stillThere(sessions: Session[], mode: KillMode): Promise<Set<number>>;
  close(): Promise<void>;
}

export type KillMode = 'cancel' | 'terminate';

/**
 * A client session as a terminate step's candidate query returns it. Candidate SQL must select
 * these columns (snake_case: session_token, query_token, in_state_s).
 */
export interface Session {
  /** Backend pid (PostgreSQL) or connection id (MySQL). */
  pid: number;
  /** Identifies this session apart from a later one with the same id (backend_start; user@host). */
  sessionToken: string;
  /** Identifies the statement running now (query_start), so a cancel can tell it ended. */
  queryToken: string;
  user: string;
  application: string;
  client: string;
  state: string;
  /** Seconds in the state that made it a candidate. */
  inStateS: number;
  query: string;
  superuser: boolean;
  /**
   * Why `application` is unknown (the server does not let poolctl read it), with the fix: a
   * --protect-app rule cannot be evaluated for this session, which spares it.
   */
  applicationUnknown?: string;
  /**
   * Why `superuser` is unknown (other accounts' grants are unreadable), with the fix: the session
   * is spared as a possible superuser's unless --include-superusers.
   */
  superuserUnknown?: string;
}

/** Who must never be touched, beyond poolctl itself and the server's own processes. */
export interface Protection {
  users: string[];
  applications: string[];
  /**
   * Monitoring programs spared by default (the runbook parameter protect_apps_default): unlike
   * `applications`, a courtesy that spares nobody where program names cannot be read.
   */
  defaultApplications?: string[];
  includeSuperusers: boolean;
}

export interface CandidateRequest {
  sql: string;
  params: unknown[];
}

export interface SignalRequest extends CandidateRequest {
  mode: KillMode;
  sessions: Session[];
  protection: Protection;
  /**
   * Ctrl-C, looked at by an adapter whose kill takes more than one statement (MySQL's KILLs one
   * at a time): once aborted, no further KILL is sent and the rest are returned as spared.
   */
  signal?: AbortSignal;
}

export interface SignalResult {
  /** Signals delivered (the server accepted them); the caller polls until they are gone. */
  signalled: number[];
  /** Gone before the signal reached them. */
  gone: number[];
  /** Shown but changed or protected by the time of the kill, with the reason. */
  spared: { pid: number; reason: string }[];
  /** The server refused the signal (e.g. permission), with the reason. */
  failed: { pid: number; reason: string }[];
  /** An interrupt stopped the kill inside this batch: some victims are spared without a signal. */
  stoppedEarly?: boolean;
}

/** Where to connect, before connecting. Passwords stay here and never reach a label or a file. */
export interface DatabaseTargetSpec {
  engine: Engine;
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** Connect timeout in milliseconds. */
  connectTimeoutMs: number;
  /** Statement timeout on our own session in milliseconds. */
  statementTimeoutMs: number;
  /**
   * Keep the statement timeout client-side only (PostgreSQL): the session then shows the defaults a
   * new session on the database gets, which prevent audits. The client-side limit still holds.
   */
  sessionDefaults?: boolean;
  /** Where the settings came from (`--pg`, `DATABASE_URL`, `PGHOST…`), for error messages. */
  from: string;
  /** TLS from the URL or PGSSLMODE (resolve.ts); absent or false: a plain connection. */
  tls?: TlsSettings;
  /** sslmode=prefer/allow: where the server has no TLS, connect without it (as libpq does). */
  tlsFallbackToPlain?: boolean;
}

/** `true` (pg: verify against the default CAs) or the driver's TLS options; `verifyIdentity` is mysql2's. */
export type TlsSettings = boolean | (ConnectionOptions & { verifyIdentity?: boolean });
