/**
 * Database changes whose statement takes no bound parameters: PostgreSQL's utility statements
 * (`ALTER DATABASE app SET statement_timeout = …`) accept neither a `$1` for the database's name
 * nor one for the value. Their SQL file writes `{database}` for the target database — filled with
 * the name as the server itself quotes it (quote_ident) — and `{param_ms}` for a duration
 * parameter in whole milliseconds (or `{param}` for an integer one): numbers poolctl parsed,
 * never text from the command line.
 */
import { UsageError } from '../errors.js';
import type { ParameterSpec, ParameterValues } from './types.js';

const PLACEHOLDER = /\{([a-z][a-z0-9_]*)\}/g;

/** The statement without its `--` comment lines, as shown and sent. */
export function statementOf(sql: string): string {
  return sql
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n')
    .trim()
    .replace(/;$/, '');
}

/** True when the SQL file is a template (names the target `{database}`), not a bound statement. */
export function isStatementTemplate(sql: string): boolean {
  return statementOf(sql).includes('{database}');
}

/** The placeholders of a template other than `{database}`, each with the parameter it names. */
export function templateParameters(sql: string): { placeholder: string; param: string }[] {
  const out: { placeholder: string; param: string }[] = [];
  for (const m of statementOf(sql).matchAll(PLACEHOLDER)) {
    const name = m[1]!;
    if (name === 'database') continue;
    out.push({ placeholder: name, param: name.endsWith('_ms') ? name.slice(0, -3) : name });
  }
  return out;
}

/** Problems of a template against the step's `params` (the loader reports them). */
export function templateProblems(sql: string, params: string[]): string[] {
  const used = templateParameters(sql);
  const problems: string[] = [];
  for (const { placeholder, param } of used) {
    if (!params.includes(param)) problems.push(`{${placeholder}} names ${param}, not in params`);
  }
  for (const param of params) {
    if (!used.some((u) => u.param === param)) problems.push(`params lists ${param}, unused`);
  }
  if (/\$\d|\?/.test(statementOf(sql).replace(/'[^']*'/g, ''))) {
    problems.push('a template binds nothing: no $n or ? placeholders');
  }
  return problems;
}

/**
 * The statement with `{database}` as the server quoted it and each parameter as a number: a
 * duration's `{name_ms}` in whole milliseconds, an integer's `{name}` as itself. Anything else
 * (a string parameter) is refused: only numbers poolctl parsed are ever written into SQL.
 */
export function renderStatement(
  sql: string,
  quotedDatabase: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): string {
  return statementOf(sql).replace(PLACEHOLDER, (whole, name: string) => {
    if (name === 'database') return quotedDatabase;
    const ms = name.endsWith('_ms');
    const param = ms ? name.slice(0, -3) : name;
    const value = Number(values[param]);
    const type = specs[param]?.type;
    const ok = ms ? type === 'duration' : type === 'integer';
    if (!ok || !Number.isFinite(value) || value < 0) {
      throw new UsageError(`${whole}: expected a number from the ${param} parameter`);
    }
    return String(Math.round(ms ? value * 1000 : value));
  });
}
