/**
 * The database server as its exporter shows it (postgres_exporter, mysqld_exporter, read through
 * Prometheus): a second opinion while poolctl reads the server itself, and the database side's
 * only numbers when the server refuses poolctl (out of slots, even for the on-call account).
 */
import { ExitCode, TargetError } from '../errors.js';
import type { Step } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import type { DatabaseTarget } from '../targets/types.js';
import type { Finding, HealthStatus, Metrics } from './model.js';

/** A Prometheus step whose numbers are the database server's (`side: server`). */
export function isServerSide(step: Step): boolean {
  return step.kind === 'promql' && step.side === 'server';
}

/** The server was measured by poolctl itself in this phase: its metrics step gave a number. */
export function serverMeasured(metrics: Metrics): boolean {
  return metrics.utilization_percent !== undefined;
}

/**
 * The exporter's findings once poolctl has read the server itself: information beside the
 * server's own numbers (which a scrape interval may lag), never a second verdict on them.
 */
export function asSecondOpinion(findings: Finding[]): Finding[] {
  return findings.map((f) => ({
    ...f,
    severity: f.severity === 'critical' || f.severity === 'warning' ? 'info' : f.severity,
    message: `Second opinion: ${f.message}`,
    suggest: [],
  }));
}

/** The one finding that says the server refused poolctl: its steps did not run. */
export function refusedFinding(reason: string, phase: string): Finding {
  return {
    id: 'database-refused',
    severity: 'warning',
    message: `${reason} — poolctl could not read the server itself; the database side here is read from its exporter through Prometheus`,
    step: phase,
    suggest: [],
    count: 0,
  };
}

/**
 * Connects the database; when it refuses and Prometheus is given, returns the refusal instead of
 * throwing, so the run reads the exporter's view of the server (and the application's pools).
 * Without Prometheus nothing else can be read: the refusal ends the run (exit 3), as before.
 */
export async function databaseOrRefusal(
  targets: Targets,
): Promise<{ target?: DatabaseTarget; refused?: TargetError }> {
  try {
    return { target: await targets.database() };
  } catch (err) {
    if (err instanceof TargetError && targets.has('prometheus')) return { refused: err };
    throw err;
  }
}

/**
 * The exit code of a run whose server refused poolctl: 4 when what it could read still shows a
 * critical finding (the exporter says the server is full, a replica's pool is full), else 3, the
 * target that could not be reached; never 0 from the steps that could run.
 */
export function refusedExitCode(status: HealthStatus): number {
  return status === 'critical' ? ExitCode.unhealthy : ExitCode.target;
}
