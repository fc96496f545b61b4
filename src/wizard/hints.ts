import { formatDuration } from '../runbook/params.js';
import type { ParameterValues, Step, ThresholdHint } from '../runbook/types.js';
import type { Row } from '../targets/types.js';
import { conditionsOf, holds } from './findings.js';
import type { Finding, StepOutcome } from './model.js';

/** Thresholds an operator would type, shortest first: a hint rounds an age down to one of them. */
const LADDER = [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 600, 900, 1800, 3600];

/** The largest round duration not above `seconds` (at least one second). */
export function roundDown(seconds: number): number {
  let best = LADDER[0]!;
  for (const step of LADDER) if (step <= seconds) best = step;
  if (seconds >= 7200) best = Math.floor(seconds / 3600) * 3600;
  return best;
}

/** "43 pgbench" or "43 (31 pgbench, 12 api)": who holds the sessions a hint counts. */
function whoOf(counts: Map<string, number>): string {
  const named = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  if (named.length === 1) return `${named[0]![0]} `;
  const shown = named.slice(0, 3).map(([name, n]) => `${n} ${name}`);
  if (named.length > 3) shown.push('…');
  return `(${shown.join(', ')}) `;
}

/**
 * One hint: what `hint.param` at a lower value would match among `rows`, when its value matches
 * none of them. Sub-second ages are a pool at work, not a lead. Each row is one session, or, with
 * `hint.sessions`, a group whose `age` is its youngest member's, so that every session of a
 * counted group is at least that old: the count is exact (sessions of other groups may match too).
 */
export function hintFor(
  hint: ThresholdHint,
  rows: Row[],
  values: ParameterValues,
  stepId: string,
): Finding | undefined {
  const threshold = values[hint.param];
  if (typeof threshold !== 'number') return undefined;
  const conditions = conditionsOf(hint.when);
  const ageOf = (row: Row) => (row[hint.age] === null ? NaN : Number(row[hint.age]));
  const sessionsOf = (row: Row) => (hint.sessions ? Number(row[hint.sessions]) || 0 : 1);
  const relevant = rows.filter(
    (row) => conditions.every((c) => holds(row, c, values)) && Number.isFinite(ageOf(row)),
  );
  // The default matches something: the action has its victims, no hint needed.
  const oldestOf = (row: Row) => (hint.oldest ? Number(row[hint.oldest]) : ageOf(row));
  if (relevant.some((row) => oldestOf(row) >= threshold)) return undefined;
  const candidates = relevant.filter((row) => ageOf(row) >= 1 && sessionsOf(row) > 0);
  if (candidates.length === 0) return undefined;
  // Per session: the youngest of them sets the value, so every one is counted. Per group: the
  // largest group does, and every group at least that old comes along.
  const pivot = hint.sessions
    ? [...candidates].sort((a, b) => sessionsOf(b) - sessionsOf(a) || ageOf(b) - ageOf(a))[0]!
    : [...candidates].sort((a, b) => ageOf(a) - ageOf(b))[0]!;
  const lower = roundDown(ageOf(pivot));
  const matched = candidates.filter((row) => ageOf(row) >= lower);
  const counts = new Map<string, number>();
  let count = 0;
  for (const row of matched) {
    const name = hint.by ? String(row[hint.by] ?? '') || '(none)' : '';
    counts.set(name, (counts.get(name) ?? 0) + sessionsOf(row));
    count += sessionsOf(row);
  }
  const who = hint.by ? whoOf(counts) : '';
  const set = `${hint.param}=${formatDuration(lower)}`;
  const matches = `${count} ${who}${hint.what} > ${formatDuration(lower)}`;
  return {
    id: 'lower-threshold',
    severity: 'info',
    message: `${matches}, none past ${hint.param}=${formatDuration(threshold)}: \`--set ${set}\` lets ${hint.action} match them`,
    step: stepId,
    suggest: [],
    count,
    hint: { action: hint.action, param: hint.param, value: lower, set, matches },
  };
}

/**
 * When a critical finding stands (the server or a pool is full) yet an action's threshold matches
 * nothing, what a lower one would match, with the count and the exact flag: never just "nothing to
 * do". Read from the rows the phase's steps already returned.
 */
export function thresholdHints(
  steps: Step[],
  outcomes: StepOutcome[],
  findings: Finding[],
  values: ParameterValues,
): Finding[] {
  if (!findings.some((f) => f.severity === 'critical')) return [];
  const hints: Finding[] = [];
  for (const step of steps) {
    if (!step.hints?.length) continue;
    const outcome = [...outcomes].reverse().find((o) => o.id === step.id);
    if (outcome?.status !== 'ok' || !outcome.rows) continue;
    for (const hint of step.hints) {
      const finding = hintFor(hint, outcome.rows, values, step.id);
      if (finding) hints.push(finding);
    }
  }
  return hints;
}
