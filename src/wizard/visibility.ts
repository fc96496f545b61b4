import { UsageError } from '../errors.js';
import { bindParameters } from '../runbook/params.js';
import type { ParameterValues, Runbook } from '../runbook/types.js';
import type { DatabaseTarget } from '../targets/types.js';
import { evaluateFindings } from './findings.js';

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
 * not the server, and nothing was done.
 */
export async function refuseBlindKill(
  actionId: string,
  runbook: Runbook,
  values: ParameterValues,
  target: DatabaseTarget,
): Promise<void> {
  const step = runbook.diagnose.find((s) => s.kind === 'query' && s.metrics);
  if (!step || step.kind !== 'query') return;
  const rows = await target.query(step.sql, bindParameters(step.params, values));
  const limited = evaluateFindings(
    step.findings.filter((f) => f.id === LIMITED_VIEW),
    rows,
    step.id,
    values,
    runbook.parameters,
  )[0];
  if (limited) {
    throw new UsageError(`--action ${actionId}: refused, nothing was done: ${limited.message}`);
  }
}
