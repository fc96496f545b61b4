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

function conditionsOf(rule: FindingRule): RowCondition[] {
  if (!rule.when) return [];
  return Array.isArray(rule.when) ? rule.when : [rule.when];
}

function holds(row: Row, condition: RowCondition, values: ParameterValues): boolean {
  const right = condition.param !== undefined ? values[condition.param] : condition.value;
  return compare(row[condition.column], condition.op, right);
}

/** Evaluates one finding rule over a step's rows; returns the finding when it fires. */
export function evaluateFinding(
  rule: FindingRule,
  rows: Row[],
  stepId: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): Finding | undefined {
  const conditions = conditionsOf(rule);
  const matches = rows.filter((row) => conditions.every((c) => holds(row, c, values)));
  const fires = rule.count
    ? compare(matches.length, rule.count.op, rule.count.value)
    : matches.length > 0;
  if (!fires) return undefined;
  const first = matches[0] ?? {};
  const firstColumn = conditions[0]?.column;
  const extra: Record<string, unknown> = {
    ...first,
    count: matches.length,
    value: firstColumn !== undefined ? first[firstColumn] : undefined,
  };
  // `{all_<column>}`: that column of every match, so a message can name every replica at fault.
  for (const column of Object.keys(first))
    extra[`all_${column}`] = matches.map((row) => String(row[column] ?? 'unknown')).join(', ');
  return {
    id: rule.id,
    severity: rule.severity,
    message: renderTemplate(rule.message, values, specs, extra),
    step: stepId,
    suggest: [...rule.suggest],
    count: matches.length,
  };
}

export function evaluateFindings(
  rules: FindingRule[],
  rows: Row[],
  stepId: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): Finding[] {
  return rules.flatMap((rule) => evaluateFinding(rule, rows, stepId, values, specs) ?? []);
}
