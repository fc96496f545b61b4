import type { Runbook, Severity } from '../runbook/types.js';
import type { Finding } from './model.js';
import { findingSide, sidesOf } from './sides.js';

const SEVERITY: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/**
 * A finding that says the connections are leaked by the application: the runbook marks it
 * (`leads: true`: the leak signature on the server, a pool that fills like a leak), or it is a
 * critical finding on the application's side (a pool at its limit: a leak or a pool too small).
 * Its actions (the application's restart and rollback) end the leak; a session kill frees the
 * server's slots but never the connections the pool counts as checked out.
 */
function leakEvidence(runbook: Runbook, f: Finding): boolean {
  return (
    f.leads === true || (f.severity === 'critical' && findingSide(runbook, f) === 'application')
  );
}

/**
 * The one order of the suggested actions, best first: diagnose's "What to do next", the JSON
 * `suggested`, the wizard's and mitigate's menu all come from here. The findings are ranked, then
 * their suggestions taken in that order, each action once, at its best place:
 * 1. severity: a critical finding's actions before a warning's, a warning's before an info's, so an
 *    action suggested only by info or warning findings never ranks above a critical finding's;
 * 2. within one severity, the leak evidence first (see `leakEvidence`): the application's restart
 *    and rollback before the kills, whichever side is full. With both sides full this is also what
 *    the "both sides" explanation says (src/wizard/sides.ts);
 * 3. when the server alone is exhausted, the server's findings (database and exporter steps) before
 *    the application's: their kills free the slots that ran out, a scale or a pool size does not;
 * 4. the finding behind the most sessions, since its action frees the most connections;
 * 5. the findings' own order, and each finding's suggestions in the order it lists them.
 */
export function rankActions(runbook: Runbook, findings: Finding[]): string[] {
  const serverOnly = sidesOf(runbook, findings, {}, false).side === 'server';
  const keyed = findings.map((f, index) => ({
    f,
    index,
    leak: leakEvidence(runbook, f),
    server: serverOnly && findingSide(runbook, f) === 'server',
  }));
  keyed.sort(
    (a, b) =>
      SEVERITY[a.f.severity] - SEVERITY[b.f.severity] ||
      Number(b.leak) - Number(a.leak) ||
      Number(b.server) - Number(a.server) ||
      b.f.count - a.f.count ||
      a.index - b.index,
  );
  const ids: string[] = [];
  for (const { f } of keyed) for (const id of f.suggest) if (!ids.includes(id)) ids.push(id);
  return ids;
}
