import { TargetError } from '../errors.js';
import type { DatabaseTargetSpec } from './types.js';

/**
 * poolctl's client-side limit on one statement is the server's own (statement_timeout,
 * max_statement_time) plus this grace: a live server's timeout error, which names the statement,
 * arrives first; only a server or network that stopped answering meets the client's.
 */
export const CLIENT_GRACE_MS = 500;

/** The client-side limit on one round trip. */
export function clientTimeoutMs(spec: DatabaseTargetSpec): number {
  return spec.statementTimeoutMs + CLIENT_GRACE_MS;
}

/** What a run says when the server accepted us and then stopped answering. */
export function noAnswerError(label: string, spec: DatabaseTargetSpec): TargetError {
  const where = `${spec.host}:${spec.port}`;
  return new TargetError(
    `${label}: no answer from ${where} within ${spec.statementTimeoutMs / 1000}s of a statement ` +
      '(a hung server or a stalled network); the connection is closed. Check the server and the ' +
      'network, then run the command again (what ran is in the transcript); raise ' +
      '--statement-timeout if it is only slow',
  );
}

/**
 * What a run says when the server itself stopped one of poolctl's statements at the statement
 * timeout (PostgreSQL 57014, MariaDB 1969, MySQL 3024): the server answers, but too slowly for
 * the limit. A target problem the operator can act on (exit 3), not a bug.
 */
export function statementTimeoutError(label: string, spec: DatabaseTargetSpec): TargetError {
  return new TargetError(
    `${label}: the server stopped a statement at poolctl's statement timeout ` +
      `(${spec.statementTimeoutMs / 1000}s): the server is slow or a lock held it; what ran is ` +
      'in the transcript: raise --statement-timeout (e.g. --statement-timeout 30s) and run the command again',
  );
}
