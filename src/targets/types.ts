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
  isSuperuser: boolean;
}

/** One connection to one database server. Opened once per run; never a pool. */
export interface DatabaseTarget {
  readonly engine: Engine;
  /** A redacted description for screens and transcripts: `postgres://app@db:5432/app`. */
  readonly label: string;
  readonly info: ServerInfo;
  /** Runs one read-only statement with positional parameters bound by the driver. */
  query(sql: string, params: unknown[]): Promise<Row[]>;
  close(): Promise<void>;
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
  /** Where the settings came from (`--pg`, `DATABASE_URL`, `PGHOST…`), for error messages. */
  from: string;
}
