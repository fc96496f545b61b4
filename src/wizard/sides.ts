import { targetOf } from '../runbook/targets.js';
import { isServerSide } from './exporter.js';
import type { Runbook } from '../runbook/types.js';
import type { Finding, Metrics } from './model.js';

/** Which side of the incident is exhausted: the database server, the application's pool, both. */
export type ExhaustedSide = 'server' | 'application' | 'both' | 'neither';

export interface Sides {
  side: ExhaustedSide;
  /** What that means and what helps, in one or two sentences; empty when neither. */
  explanation: string;
  /**
   * The sides poolctl measured: the server's headline numbers, the server as its exporter shows
   * it (Prometheus), the application's pools.
   */
  checked: ('database' | 'exporter' | 'application')[];
  /** Prometheus was given: when the application's side is missing, it failed, not went unasked. */
  applicationAsked: boolean;
}

/**
 * The side a finding speaks for, from the target of the step that raised it: a database step and
 * an exporter's step (Prometheus reading the server) speak for the server, a Prometheus step for
 * the application's pools, a kubectl step for the cluster. No finding names are assumed, so a
 * team's own runbook gets the same answer.
 */
export function findingSide(
  runbook: Runbook,
  f: Finding,
): 'server' | 'application' | 'cluster' | null {
  const step = [...runbook.diagnose, ...runbook.verify].find((s) => s.id === f.step);
  if (!step) return null;
  if (isServerSide(step)) return 'server';
  const target = targetOf(step);
  return target === 'database'
    ? 'server'
    : target === 'prometheus'
      ? 'application'
      : target === 'kubernetes'
        ? 'cluster'
        : null;
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
  const stepOf = (f: Finding) => steps.find((s) => s.id === f.step);
  const sideOf = (f: Finding) => findingSide(runbook, f);
  const critical = findings.filter((f) => f.severity === 'critical');
  const serverCritical = critical.filter((f) => sideOf(f) === 'server' && f.id !== 'limited-view');
  const server = serverCritical.length > 0;
  const serverFromExporterOnly = serverCritical.every((f) => {
    const step = stepOf(f);
    return step !== undefined && isServerSide(step);
  });
  const application = critical.some((f) => sideOf(f) === 'application');
  // What was measured, not what was asked for: a Prometheus that answered nothing checked nothing.
  const serverSeen =
    metrics.utilization_percent !== undefined && !findings.some((f) => f.id === 'limited-view');
  const checked: Sides['checked'] = [
    ...(serverSeen ? (['database'] as const) : []),
    ...(metrics.exporter_utilization_percent !== undefined ? (['exporter'] as const) : []),
    ...(metrics.app_pool_utilization_percent !== undefined ? (['application'] as const) : []),
  ];
  const applicationAsked = applicationChecked;
  const exporterSeen = metrics.exporter_utilization_percent !== undefined;
  const room = serverSeen
    ? ` while the server has room (it is at ${metrics.utilization_percent}% of its usable connections)`
    : exporterSeen
      ? ` while the server has room (its exporter shows it at ${metrics.exporter_utilization_percent}% of its usable connections)`
      : " (the server's side could not be measured)";
  // Read from outside only: say so, and where poolctl's own way in is said.
  const numbers = exporterSeen
    ? `: ${metrics.exporter_connections} of ${metrics.exporter_usable_connections} usable connections`
    : '';
  const fromExporter = serverFromExporterOnly
    ? ` (read from its exporter${numbers}; poolctl itself was refused: its refusal names the way in)`
    : '';
  if (server && application) {
    return {
      side: 'both',
      checked,
      applicationAsked,
      explanation:
        `Both sides are exhausted: the server${fromExporter} and the application's pool.` +
        ' Restart the replica whose pool is full first (roll back the build if it leaks): that returns the connections its pool counts as checked out and ends their sessions on the server, which killing server sessions never does. Then free what the server still holds (end idle and idle-in-transaction sessions, cancel long queries).',
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
      explanation: `The database server is exhausted${fromExporter}: end idle and idle-in-transaction sessions, cancel long queries, or raise its limit.`,
    };
  }
  return { side: 'neither', checked, applicationAsked, explanation: '' };
}
