import { targetOf } from '../runbook/targets.js';
import type { Runbook } from '../runbook/types.js';
import type { Finding } from './model.js';
import type { ExhaustedSide } from './sides.js';

/**
 * The suggested actions in the order the operator should try them. A full application pool is a
 * leak or a pool too small: a kill frees the server's slots but never the connections the pool
 * counts as checked out, while a restart or a rollback of the application returns them and ends
 * their server sessions too. So when the application's side is exhausted (alone or with the
 * server), or the pool fills like a leak, the cluster's changes come before the session kills;
 * otherwise the findings' order (most severe first) stands.
 */
export function rankActions(
  runbook: Runbook,
  ids: string[],
  side: ExhaustedSide,
  findings: Finding[],
): string[] {
  const leak =
    side === 'application' || side === 'both' || findings.some((f) => f.id === 'trend-leak');
  if (!leak) return ids;
  const onCluster = (id: string) => {
    const action = runbook.actions.find((a) => a.id === id);
    return action !== undefined && targetOf(action) === 'kubernetes';
  };
  return [...ids.filter(onCluster), ...ids.filter((id) => !onCluster(id))];
}
