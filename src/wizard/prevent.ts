/**
 * What `prevent` concludes from the rows its phase (and a diagnosis) read: the capacity formula,
 * the root causes with their evidence (RUNBOOK-006 "Root Cause Analysis" A–D), and the escalation
 * the runbook names when the state stays critical. Pure functions over step outcomes: the SQL and
 * the audit list are runbook data (runbooks/<engine>/pool-exhausted.yaml `prevent:`).
 */
import { formatDuration } from '../runbook/params.js';
import type { ParameterValues, Runbook } from '../runbook/types.js';
import type { Row } from '../targets/types.js';
import {
  bufferOf,
  checkCapacity,
  sourcesText,
  type Capacity,
  type Sourced,
  type SurgeInput,
} from './capacity.js';
import type { Finding, HealthStatus, Metrics, StepOutcome } from './model.js';

/** One root cause, named with what shows it and what the seed says to change. */
export interface RootCause {
  id: 'connection-leak' | 'long-transaction' | 'n-plus-one' | 'missing-timeout';
  evidence: string;
  fix: string;
  /** The application (or statement) it points at, when one does. */
  application?: string;
  statement?: string;
}

/** A root cause poolctl looked for and could not read the evidence of (not "none"). */
export interface UncheckedCause {
  id: RootCause['id'];
  reason: string;
}

const FIX = {
  'connection-leak':
    "return every connection to the pool: a context manager / try-finally around each checkout (RUNBOOK-006 Root cause A); turn on the pool's leak detection (HikariCP leakDetectionThreshold, SQLAlchemy pool_pre_ping + pool_recycle); restart or roll back the leaking build now",
  'long-transaction':
    'keep transactions short and commit or roll back on every path (RUNBOOK-006 Root cause B); set idle_in_transaction_session_timeout (poolctl prevent --apply idle-in-transaction-timeout)',
  'n-plus-one':
    'load the related rows in one query (eager loading / a join) instead of one query per row (RUNBOOK-006 Root cause C)',
  'missing-timeout':
    "set the seed's timeouts: statement_timeout 30s and idle_in_transaction_session_timeout (poolctl prevent --apply statement-timeout --apply idle-in-transaction-timeout), and pool_timeout=30 in the application (RUNBOOK-006 Root cause D, Prevention 2)",
} as const;

function rowsOf(outcomes: StepOutcome[], id: string): Row[] | undefined {
  const outcome = [...outcomes].reverse().find((o) => o.id === id && o.status === 'ok');
  return outcome?.rows;
}

const num = (v: unknown) => (typeof v === 'number' ? v : Number(v));

/**
 * Root causes from the outcomes of a prevent phase or a diagnosis: whichever of their steps ran.
 * `findings` are the run's findings (missing timeouts, a replica's full pool, the trend's leak).
 */
export function rootCausesOf(
  outcomes: StepOutcome[],
  findings: Finding[],
  values: ParameterValues,
): { causes: RootCause[]; unchecked: UncheckedCause[] } {
  const causes: RootCause[] = [];
  const unchecked: UncheckedCause[] = [];
  const leakAfter = formatDuration(num(values.leak_idle_after ?? 600));
  const txAfter = formatDuration(num(values.idle_in_tx_after ?? 30));

  // A: connection leak — one application's idle sessions aged past leak_idle_after.
  const leaks = perApplication(
    rowsOf(outcomes, 'leak-by-application') ?? rowsOf(outcomes, 'idle-leaks'),
    'idle_s',
  );
  for (const row of leaks ?? []) {
    const app = String(row.application ?? 'unknown');
    causes.push({
      id: 'connection-leak',
      application: app,
      evidence: `${app} (${String(row.user ?? '?')}) holds ${num(row.sessions)} sessions idle longer than leak_idle_after ${leakAfter} (oldest ${num(row.oldest_idle_s ?? row.oldest_s)}s): checked out and never returned`,
      fix: FIX['connection-leak'],
    });
  }
  // …or its pool at the limit, or the trend's leak pattern (the application's side).
  for (const f of findings) {
    if (f.id === 'app-pool-critical' || f.id === 'trend-leak') {
      causes.push({ id: 'connection-leak', evidence: f.message, fix: FIX['connection-leak'] });
    }
  }

  // B: long transaction — idle in a transaction past idle_in_tx_after, lock waits behind it.
  // MySQL lists every open transaction: the idle ones are those whose connection sleeps.
  const longTx = perApplication(
    (rowsOf(outcomes, 'long-transactions') ?? rowsOf(outcomes, 'idle-in-transaction'))?.filter(
      (r) => r.command === undefined || r.command === 'Sleep',
    ),
    'transaction_s',
  );
  for (const row of longTx ?? []) {
    const app = String(row.application ?? 'unknown');
    const waiters = num(row.lock_waiters ?? 0);
    causes.push({
      id: 'long-transaction',
      application: app,
      evidence: `${app} (${String(row.user ?? '?')}) has ${num(row.sessions)} sessions idle in a transaction longer than idle_in_tx_after ${txAfter} (oldest transaction ${num(row.oldest_transaction_s ?? row.oldest_s)}s)${waiters > 0 ? `, ${waiters} sessions waiting on their locks` : ''}`,
      fix: FIX['long-transaction'],
    });
  }

  // C: N+1 — one statement called at a very high rate, where the statistics are readable.
  const stats = [...outcomes].reverse().find((o) => o.id === 'top-statements');
  if (stats?.status === 'failed') {
    unchecked.push({
      id: 'n-plus-one',
      reason: `statement statistics could not be read: ${stats.error ?? 'failed'}`,
    });
  } else if (stats?.status === 'ok') {
    const rows = stats.rows ?? [];
    const off = rows.find((r) => r.readable !== undefined && num(r.readable) === 0);
    if (off) {
      unchecked.push({
        id: 'n-plus-one',
        reason:
          'performance_schema is OFF: statement statistics could not be read (set performance_schema=ON and restart)',
      });
    } else {
      const threshold = num(values.n_plus_one_calls_per_s ?? 100);
      for (const row of rows) {
        if (row.statement === null || row.statement === undefined) continue;
        if (num(row.calls_per_s) < threshold) continue;
        causes.push({
          id: 'n-plus-one',
          statement: String(row.statement),
          evidence: `${String(row.statement)} runs ${num(row.calls_per_s)} times a second (${num(row.calls)} calls), above n_plus_one_calls_per_s ${threshold}`,
          fix: FIX['n-plus-one'],
        });
      }
    }
  }

  // D: missing timeout — the audit's critical findings.
  const missing = findings.filter(
    (f) => /^missing-.*timeout$/.test(f.id) && f.severity === 'critical',
  );
  if (missing.length > 0) {
    causes.push({
      id: 'missing-timeout',
      evidence: missing.map((f) => f.message.split(':')[0]).join('; '),
      fix: FIX['missing-timeout'],
    });
  }
  return { causes, unchecked };
}

/**
 * Per-session rows (diagnose's, MySQL's) folded per application — the account where no program
 * name is readable (MariaDB without performance_schema) — as PostgreSQL's prevent steps return them.
 */
function perApplication(rows: Row[] | undefined, ageColumn: string): Row[] | undefined {
  if (!rows || rows.every((r) => r.sessions !== undefined)) return rows;
  const by = new Map<string, Row>();
  for (const r of rows) {
    const key = `${String(r.application ?? '')}\u0000${String(r.user ?? '')}`;
    const seen = by.get(key) ?? {
      application: r.application || r.user || '(no application_name)',
      user: r.user,
      sessions: 0,
      oldest_s: 0,
    };
    seen.sessions = num(seen.sessions) + 1;
    seen.oldest_s = Math.max(num(seen.oldest_s), num(r[ageColumn] ?? 0));
    by.set(key, seen);
  }
  return [...by.values()].sort((a, b) => num(b.sessions) - num(a.sessions));
}

export type { Capacity } from './capacity.js';

/** prevent's step that reads the application's Deployment (runbooks/shared/application.yaml). */
export const PREVENT_DEPLOYMENT_STEP = 'prevent-deployment';

/** The application's numbers of the capacity formula, each with where it came from. */
export interface AppCapacityInputs {
  replicas: Sourced;
  poolSize: Sourced;
  maxOverflow: Sourced;
  /** Prometheus' largest db_pool_connections_max: pool_size + max_overflow, when neither is known. */
  perPod?: Sourced;
  surge: SurgeInput;
  /** Nothing given or read for the replicas or the pool: no --set, no Deployment, no series. */
  none: boolean;
}

/**
 * The application's side of RUNBOOK-006 Prevention 1, each number from the first source that has
 * it: --set, then the Deployment kubectl read (`prevent-deployment`: spec.replicas, the app
 * container's DATABASE_POOL_SIZE / DATABASE_POOL_MAX_OVERFLOW, maxSurge), then Prometheus'
 * db_pool_connections_max per replica (`app-pool-max`: the replicas it counts, and the largest
 * pool as pool_size + max_overflow). A number none of them has is `unknown`, with why; the surge
 * alone falls back to rollout_surge (Kubernetes' default maxSurge). prevent's audit and prevent
 * --emit both resolve their numbers here.
 */
export function appCapacityInputs(
  given: readonly string[],
  values: ParameterValues,
  outcomes: StepOutcome[],
): AppCapacityInputs {
  const set = (name: string): Sourced | undefined =>
    given.includes(name) && typeof values[name] === 'number'
      ? { value: values[name] as number, from: 'set' }
      : undefined;
  const deployment = rowsOf(outcomes, PREVENT_DEPLOYMENT_STEP)?.[0];
  const maxes = (rowsOf(outcomes, 'app-pool-max') ?? [])
    .map((r) => num(r.max))
    .filter((n) => Number.isFinite(n));
  const noDeployment = deployment
    ? undefined
    : 'no Deployment read (--kubectl, --set deployment=NAME)';
  const fromDeployment = (column: string): Sourced | undefined => {
    const v = deployment?.[column];
    return typeof v === 'number' ? { value: v, from: 'kubectl' } : undefined;
  };
  const unknown = (why: string): Sourced => ({ from: 'unknown', why });
  const poolWhy = (env: string) =>
    noDeployment ??
    (String(deployment?.unreadable ?? '')
      .split('; ')
      .find((w) => w.startsWith(env)) ||
      `${env} not read from the Deployment`);

  const replicas =
    set('replicas') ??
    fromDeployment('replicas') ??
    (maxes.length > 0 ? { value: maxes.length, from: 'prometheus' as const } : undefined);
  const poolSize = set('pool_size') ?? fromDeployment('pool_size');
  const maxOverflow = set('max_overflow') ?? fromDeployment('max_overflow');
  // Prometheus' per-replica maximum is pool_size + max_overflow together: it stands in only when
  // neither was given or read, never beside a pool_size that was.
  const perPod =
    !poolSize && !maxOverflow && maxes.length > 0
      ? { value: Math.max(...maxes), from: 'prometheus' as const }
      : undefined;
  const maxSurge = deployment?.max_surge;
  const surge: SurgeInput = given.includes('rollout_surge')
    ? { percent: num(values.rollout_surge), from: 'set' }
    : typeof maxSurge === 'number'
      ? { count: maxSurge, from: 'kubectl' }
      : typeof maxSurge === 'string' && /^\d+%$/.test(maxSurge)
        ? { percent: Number(maxSurge.slice(0, -1)), from: 'kubectl' }
        : { percent: num(values.rollout_surge ?? 25), from: 'default' };
  return {
    replicas: replicas ?? unknown(noDeployment ?? 'not read'),
    poolSize: poolSize ?? unknown(poolWhy('DATABASE_POOL_SIZE')),
    maxOverflow: maxOverflow ?? unknown(poolWhy('DATABASE_POOL_MAX_OVERFLOW')),
    ...(perPod && { perPod }),
    surge,
    none: !replicas && !poolSize && !maxOverflow && maxes.length === 0,
  };
}

/**
 * RUNBOOK-006 Prevention 1 with the one formula of ./capacity.ts, (replicas + surge) × (pool_size +
 * max_overflow) ≤ usable − buffer, the application's numbers from `appCapacityInputs`. A runbook
 * default is the seed's example, not this deployment: never used for replicas or the pool. The
 * finding and the JSON name each number's source. Nothing to judge without any of them: then it
 * says so, as a finding that names the flags.
 */
export function capacityOf(
  given: string[],
  values: ParameterValues,
  metrics: Metrics,
  outcomes: StepOutcome[],
): { capacity?: Capacity; finding: Finding } {
  const base = { step: 'capacity', suggest: [] as string[], count: 0 };
  const { none, ...app } = appCapacityInputs(given, values, outcomes);
  const unknown = (why: string): Sourced => ({ from: 'unknown', why });
  if (none) {
    return {
      finding: {
        ...base,
        id: 'capacity-unknown',
        severity: 'info',
        message:
          'capacity formula not checked: pass --kubectl (the Deployment), --prometheus (db_pool_connections_max per replica), or --set replicas=N --set pool_size=N --set max_overflow=N (RUNBOOK-006 Prevention 1)',
      },
    };
  }
  const usable: Sourced =
    metrics.usable_connections !== undefined
      ? { value: metrics.usable_connections, from: 'server' }
      : metrics.exporter_usable_connections !== undefined
        ? { value: metrics.exporter_usable_connections, from: 'exporter' }
        : unknown('the usable connections could not be read');
  const capacity = checkCapacity({
    ...app,
    usable,
    buffer: bufferOf(values, usable.value, given).buffer,
  });
  const from = `from: ${sourcesText(capacity)}`;
  const { arithmetic, demand, usable: slots, buffer } = capacity;
  if (capacity.oversubscribed === undefined) {
    return {
      capacity,
      finding: {
        ...base,
        id: 'capacity-unknown',
        severity: 'warning',
        message: `${arithmetic}: cannot check (${capacity.unknown.join('; ')}); ${from}`,
      },
    };
  }
  if (capacity.over_usable) {
    return {
      capacity,
      finding: {
        ...base,
        id: 'capacity-oversubscribed',
        severity: 'critical',
        message: `${arithmetic}: the pools at a rollout's peak exceed the ${slots} usable connections by ${demand! - slots!} and can exhaust the server with every request succeeding; lower pool_size/max_overflow, raise max_connections, or put PgBouncer in front (RUNBOOK-006 Prevention 1 and 3); ${from}`,
      },
    };
  }
  if (capacity.oversubscribed) {
    return {
      capacity,
      finding: {
        ...base,
        id: 'capacity-no-buffer',
        severity: 'warning',
        message: `${arithmetic}: the pools at a rollout's peak leave ${slots! - demand!} of ${slots} usable connections, less than the ${buffer} buffer (capacity_buffer, or capacity_headroom % of usable) for administrators, migrations and cron (RUNBOOK-006 Prevention 1: max_connections > total + buffer); ${from}`,
      },
    };
  }
  return {
    capacity,
    finding: {
      ...base,
      id: 'capacity-ok',
      severity: 'info',
      message: `${arithmetic}: fits, ${slots! - demand!} usable connections to spare at a rollout's peak; ${from}`,
    },
  };
}

/** The escalation the runbook names, when the state stays critical after the mitigation. */
export interface EscalationReport {
  reason: string;
  severity: string;
  response_time: string;
  team: string;
  contact: string;
  levels: { severity: string; response_time: string; team: string; contact: string }[];
  channels: string[];
}

export function escalationOf(
  runbook: Runbook,
  status: HealthStatus,
  reason: string,
): EscalationReport | undefined {
  if (status !== 'critical' || !runbook.escalation) return undefined;
  const [first] = runbook.escalation.levels;
  if (!first) return undefined;
  return {
    reason,
    ...first,
    levels: runbook.escalation.levels,
    channels: runbook.escalation.channels,
  };
}

/** One line per escalation level, for the summary and the transcript. */
export function escalationLines(e: EscalationReport): string[] {
  return [
    `Escalate (${e.reason}):`,
    ...e.levels.map((l) => `  ${l.severity}: ${l.team} within ${l.response_time} (${l.contact})`),
    `  post in: ${e.channels.join(', ')}`,
  ];
}

/** Records the escalation in the transcript and returns the lines to show. */
export function announceEscalation(
  transcript: { append(event: { type: 'note'; text: string }): unknown },
  e: EscalationReport,
): string[] {
  const lines = escalationLines(e);
  transcript.append({ type: 'note', text: lines.join('\n') });
  return lines;
}
