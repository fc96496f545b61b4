import { UsageError } from '../errors.js';
import type { Measurement } from './measure.js';

/**
 * The finding a runbook's metrics step raises when poolctl's account cannot see other accounts'
 * sessions (PostgreSQL without pg_read_all_stats, MySQL without PROCESS); its message names the
 * grant that fixes it.
 */
export const LIMITED_VIEW = 'limited-view';

/**
 * Refuses a session kill that poolctl cannot see to choose. A role that sees only its own sessions
 * finds no victims among the others and would report "nothing to do" on a full server; it says so
 * instead, with the grant, before anything is selected. Exit 2: what must change is the account,
 * not the server, and nothing was done. Judged from the action's before-measurement, so the
 * check costs no query of its own.
 */
export function refuseBlindKill(actionId: string, before: Measurement): void {
  const limited = before.findings.find((f) => f.id === LIMITED_VIEW);
  if (limited) {
    throw new UsageError(`--action ${actionId}: refused, nothing was done: ${limited.message}`);
  }
}
