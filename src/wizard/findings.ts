import { renderTemplate } from '../runbook/params.js';
import type {
  Comparison,
  FindingRule,
  ParameterSpec,
  ParameterValues,
  RowCondition,
} from '../runbook/types.js';
import type { Row } from '../targets/types.js';
import type { Finding } from './model.js';

function compare(left: unknown, op: Comparison, right: unknown): boolean {
  if (left === null || left === undefined || right === undefined) return false;
  const bothNumeric = typeof right === 'number' || typeof left === 'number';
  const a = bothNumeric ? Number(left) : String(left);
  const b = bothNumeric ? Number(right) : String(right);
  if (bothNumeric && (Number.isNaN(a) || Number.isNaN(b))) return false;
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

export function conditionsOf(when: RowCondition | RowCondition[] | undefined): RowCondition[] {
  if (!when) return [];
  return Array.isArray(when) ? when : [when];
}

export function holds(row: Row, condition: RowCondition, values: ParameterValues): boolean {
  const right = condition.param !== undefined ? values[condition.param] : condition.value;
  return compare(row[condition.column], condition.op, right);
}

/** The rows that make a rule fire, and what its message may use beyond their columns. */
interface Matched {
  matches: Row[];
  extra: Record<string, unknown>;
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * `standsOut`: the row with the highest `column`, when it is `ratio` times (and `gap` above) the
 * runner-up's or the others' median, and meets the conditions. Relative, so one application
 * holding three times what the next holds is named whatever share of the server that is.
 */
function standingOut(
  rule: FindingRule & { standsOut: NonNullable<FindingRule['standsOut']> },
  rows: Row[],
  conditions: RowCondition[],
  values: ParameterValues,
): Matched | undefined {
  const { column, against, ratio, gap = 0 } = rule.standsOut;
  const valueOf = (row: Row) => (row[column] === null ? NaN : Number(row[column]));
  const ranked = rows
    .filter((row) => Number.isFinite(valueOf(row)))
    .sort((a, b) => valueOf(b) - valueOf(a));
  const [top, ...others] = ranked;
  if (!top || others.length === 0) return undefined;
  if (!conditions.every((c) => holds(top, c, values))) return undefined;
  const highest = valueOf(top);
  const reference = against === 'next' ? valueOf(others[0]!) : median(others.map(valueOf));
  if (highest <= reference || highest < ratio * reference || highest - reference < gap)
    return undefined;
  const extra: Record<string, unknown> = {
    others: others.length,
    others_median: round1(median(others.map(valueOf))),
    times: reference > 0 ? round1(highest / reference) : '∞',
  };
  for (const [key, value] of Object.entries(others[0]!)) extra[`next_${key}`] = value;
  return { matches: [top], extra };
}

function matching(rule: FindingRule, rows: Row[], values: ParameterValues): Matched | undefined {
  const conditions = conditionsOf(rule.when);
  if (rule.standsOut)
    return standingOut({ ...rule, standsOut: rule.standsOut }, rows, conditions, values);
  const matches = rows.filter((row) => conditions.every((c) => holds(row, c, values)));
  const fires = rule.count
    ? compare(matches.length, rule.count.op, rule.count.value)
    : matches.length > 0;
  return fires ? { matches, extra: {} } : undefined;
}

/** `{all_<column>}`: that column of every match, so a message can name every replica at fault. */
function allOf(matches: Row[], prefix = ''): Record<string, unknown> {
  const all: Record<string, unknown> = {};
  for (const column of Object.keys(matches[0] ?? {}))
    all[`${prefix}all_${column}`] = matches
      .map((row) => String(row[column] ?? 'unknown'))
      .join(', ');
  return all;
}

/**
 * Evaluates one finding rule over a step's rows; returns the finding when it fires. A rule that
 * looks at another step's rows too (`alongside`) fires only when given `rowsOf`, once the phase
 * has run.
 */
export function evaluateFinding(
  rule: FindingRule,
  rows: Row[],
  stepId: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
  rowsOf?: (stepId: string) => Row[] | undefined,
): Finding | undefined {
  let alongside: Record<string, unknown> = {};
  if (rule.alongside) {
    const other = rowsOf?.(rule.alongside.step);
    if (!other) return undefined;
    const conditions = conditionsOf(rule.alongside.when);
    const also = other.filter((row) => conditions.every((c) => holds(row, c, values)));
    if (also.length === 0) return undefined;
    for (const [key, value] of Object.entries(also[0]!)) alongside[`alongside_${key}`] = value;
    alongside = { ...alongside, ...allOf(also, 'alongside_') };
  }
  const matched = matching(rule, rows, values);
  if (!matched) return undefined;
  const { matches } = matched;
  const first = matches[0] ?? {};
  const firstColumn = conditionsOf(rule.when)[0]?.column ?? rule.standsOut?.column;
  const extra: Record<string, unknown> = {
    ...first,
    count: matches.length,
    // `{value}` is the row's own `value` column when it has one (a setting's value: "wait_timeout
    // is 28800s"), else the first condition's column (which for a setting row is its name).
    value: Object.hasOwn(first, 'value')
      ? first.value
      : firstColumn !== undefined
        ? first[firstColumn]
        : undefined,
    ...allOf(matches),
    ...matched.extra,
    ...alongside,
  };
  const finding: Finding = {
    id: rule.id,
    severity: rule.severity,
    message: renderTemplate(rule.message, values, specs, extra),
    step: stepId,
    suggest: [...rule.suggest],
    count: matches.length,
  };
  if (rule.leads) finding.leads = true;
  return finding;
}

/** The rules of a step that fire on its own rows (those with `alongside` wait for the phase). */
export function evaluateFindings(
  rules: FindingRule[],
  rows: Row[],
  stepId: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): Finding[] {
  return rules
    .filter((rule) => !rule.alongside)
    .flatMap((rule) => evaluateFinding(rule, rows, stepId, values, specs) ?? []);
}

/** The `alongside` rules of a step, once every step of the phase has its rows. */
export function evaluateAlongside(
  rules: FindingRule[],
  rows: Row[],
  stepId: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
  rowsOf: (stepId: string) => Row[] | undefined,
): Finding[] {
  return rules
    .filter((rule) => rule.alongside)
    .flatMap((rule) => evaluateFinding(rule, rows, stepId, values, specs, rowsOf) ?? []);
}
