/**
 * The database server as its exporter shows it (postgres_exporter, mysqld_exporter, read through
 * Prometheus): a second opinion while poolctl reads the server itself, and the database side's
 * only numbers when the server refuses poolctl (out of slots, even for the on-call account).
 */
import { ExitCode, TargetError } from '../errors.js';
import type { Step } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import type { DatabaseTarget } from '../targets/types.js';
import type { Finding, HealthStatus, Metrics, StepOutcome } from './model.js';

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

/**
 * With the server refused, its holders query cannot say who takes its slots; the application's
 * pools can: the replica whose pool holds at least twice the connections of the next one, and a
 * quarter of what the exporter counts on the server, is named with its numbers — relative to the
 * others, not a fixed share. A pool that grew is a leak or a pool too large: restart it (roll back
 * a leaky build). Undefined when no replica stands out.
 */
export function poolHolderFinding(
  outcomes: StepOutcome[],
  metrics: Metrics,
  steps: Step[],
): Finding | undefined {
  const serverConnections = metrics.exporter_connections;
  if (serverConnections === undefined) return undefined;
  for (const outcome of outcomes) {
    const step = steps.find((s) => s.id === outcome.id);
    if (!step || step.kind !== 'promql' || isServerSide(step) || step.by === undefined) continue;
    const rows = (outcome.rows ?? []).filter((r) => typeof r.active === 'number');
    if (rows.length === 0) continue;
    const ranked = [...rows].sort((a, b) => Number(b.active) - Number(a.active));
    const [top, next] = [ranked[0]!, ranked[1]];
    const held = Number(top.active);
    const nextHeld = next ? Number(next.active) : 0;
    if (held <= 0 || held < 2 * nextHeld || held * 4 < serverConnections) continue;
    const others = next ? ` (the next, ${String(next.replica)}, holds ${nextHeld})` : '';
    return {
      id: 'pool-holds-server',
      severity: 'warning',
      message: `Replica ${String(top.replica)}'s pool holds ${held} of the ${serverConnections} connections its exporter counts on the server${others}: the server's sessions could not be read, its pool says who takes the slots; restart it, and roll back the build if it leaks`,
      step: outcome.id,
      suggest: ['restart-app', 'rollback-app'],
      count: held,
    };
  }
  return undefined;
}
