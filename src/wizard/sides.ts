import { targetOf } from '../runbook/targets.js';
import type { Runbook } from '../runbook/types.js';
import type { Finding, Metrics } from './model.js';

/** Which side of the incident is exhausted: the database server, the application's pool, both. */
export type ExhaustedSide = 'server' | 'application' | 'both' | 'neither';

export interface Sides {
  side: ExhaustedSide;
  /** What that means and what helps, in one or two sentences; empty when neither. */
  explanation: string;
  /** The sides poolctl measured: the server's headline numbers, the application's pools. */
  checked: ('database' | 'application')[];
  /** Prometheus was given: when the application's side is missing, it failed, not went unasked. */
  applicationAsked: boolean;
}

/**
 * The side each critical finding is on, from the target of the step that raised it: a database
 * step speaks for the server, a Prometheus step for the application's pools. No finding names are
 * assumed, so a team's own runbook gets the same verdict.
 */
export function sidesOf(
  runbook: Runbook,
  findings: Finding[],
  metrics: Metrics,
  applicationChecked: boolean,
): Sides {
  const steps = [...runbook.diagnose, ...runbook.verify];
  const sideOf = (f: Finding) => {
    const step = steps.find((s) => s.id === f.step);
    return step ? targetOf(step) : null;
  };
  const critical = findings.filter((f) => f.severity === 'critical');
  const server = critical.some((f) => sideOf(f) === 'database' && f.id !== 'limited-view');
  const application = critical.some((f) => sideOf(f) === 'prometheus');
  // What was measured, not what was asked for: a Prometheus that answered nothing checked nothing.
  const serverSeen =
    metrics.utilization_percent !== undefined && !findings.some((f) => f.id === 'limited-view');
  const checked: Sides['checked'] = [
    ...(serverSeen ? (['database'] as const) : []),
    ...(metrics.app_pool_utilization_percent !== undefined ? (['application'] as const) : []),
  ];
  const applicationAsked = applicationChecked;
  const room = serverSeen
    ? ` while the server has room (it is at ${metrics.utilization_percent}% of its usable connections)`
    : " (the server's side could not be measured)";
  if (server && application) {
    return {
      side: 'both',
      checked,
      applicationAsked,
      explanation:
        "Both sides are exhausted: the server and the application's pool. Free the server (end idle and idle-in-transaction sessions, cancel long queries), then restart the replica whose pool is full: killing server sessions does not return the connections its pool counts as checked out.",
    };
  }
  if (application) {
    return {
      side: 'application',
      checked,
      applicationAsked,
      explanation: `The application's pool is exhausted${room}: a leak or a pool too small. Killing server sessions will not return connections to the application's pool: restart the replica (roll back the build if it leaks), or scale the application.`,
    };
  }
  if (server) {
    return {
      side: 'server',
      checked,
      applicationAsked,
      explanation:
        'The database server is exhausted: end idle and idle-in-transaction sessions, cancel long queries, or raise its limit.',
    };
  }
  return { side: 'neither', checked, applicationAsked, explanation: '' };
}
