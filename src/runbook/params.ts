/**
 * Runbook parameters: durations, percents and integers as the operator types them (`--set
 * kill_idle_after=5m`), and the `{name}` templates that print them back. This module is on the
 * diagnose path, so it imports nothing heavier than the error classes.
 */
import { UsageError } from '../errors.js';
import type { ParameterSpec, ParameterType, ParameterValues } from './types.js';

const DURATION_EXPECTED = 'expected a duration like 30s, 5m or 1h';
const PERCENT_EXPECTED = 'expected a percentage from 0 to 100, like 90 or 90%';
const INTEGER_EXPECTED = 'expected a whole number like 20';
const STRING_EXPECTED = 'expected a non-empty value';

const NUMBER = String.raw`(\d+(?:\.\d+)?|\.\d+)`;
// Units in falling order, each at most once: `1h30m`, `2m15s`, `1.5s`, `250ms`. The regex engine
// backtracks from `m` to `ms`, so `250ms` is 250 milliseconds, not 250 minutes and an `s`.
const DURATION_RE = new RegExp(
  `^(?:${NUMBER}d)?(?:${NUMBER}h)?(?:${NUMBER}m)?(?:${NUMBER}s)?(?:${NUMBER}ms)?$`,
);
const UNIT_SECONDS = [86_400, 3_600, 60, 1, 0.001] as const;

/**
 * Parses `30s`, `5m`, `1h`, `1h30m`, `250ms`, `1.5s` or a bare number of seconds (`90`) into
 * seconds. `label` starts the error message (e.g. `--set kill_idle_after=5x`).
 */
export function parseDuration(text: string, label = `"${text}"`): number {
  const s = text.trim();
  if (s === '') throw new UsageError(`${label}: ${DURATION_EXPECTED}, got nothing`);
  if (s.startsWith('-')) throw new UsageError(`${label}: ${DURATION_EXPECTED}, not a negative one`);
  if (/^(\d+(?:\.\d+)?|\.\d+)$/.test(s)) return Number(s);
  const m = DURATION_RE.exec(s);
  if (!m) throw new UsageError(`${label}: ${DURATION_EXPECTED}`);
  let seconds = 0;
  UNIT_SECONDS.forEach((unit, i) => {
    const part = m[i + 1];
    if (part !== undefined) seconds += Number(part) * unit;
  });
  // Sums like 0.1 + 0.2 drift; milliseconds are the finest unit anyone types.
  return Math.round(seconds * 1_000_000) / 1_000_000;
}

/** Prints seconds the way an operator types them: `30s`, `5m`, `1h30m`, `1.5s`, `250ms`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  if (seconds < 0) return `-${formatDuration(-seconds)}`;
  const ms = Math.round(seconds * 1000);
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const rest = (ms % 60_000) / 1000;
  return (h ? `${h}h` : '') + (m ? `${m}m` : '') + (rest ? `${rest}s` : '');
}

/** Parses `90` or `90%` into 90; anything outside 0..100 is an error. */
export function parsePercent(text: string, label = `"${text}"`): number {
  const s = text.trim().replace(/\s*%$/, '');
  if (!/^(\d+(?:\.\d+)?|\.\d+)$/.test(s)) throw new UsageError(`${label}: ${PERCENT_EXPECTED}`);
  const n = Number(s);
  if (n > 100) throw new UsageError(`${label}: ${PERCENT_EXPECTED}`);
  return n;
}

/** Parses a non-negative whole number (`20`, `0`); `1.5`, `-1` and `20k` are errors. */
export function parseInteger(text: string, label = `"${text}"`): number {
  const s = text.trim();
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw new UsageError(
      `${label}: ${INTEGER_EXPECTED}${s.startsWith('-') ? ', not a negative one' : ''}`,
    );
  }
  return Number(s);
}

/** Parses one value in its parameter type's notation; `label` starts any error message. */
export function parseParameterValue(
  type: ParameterType,
  raw: string,
  label: string,
): number | string {
  switch (type) {
    case 'duration':
      return parseDuration(raw, label);
    case 'percent':
      return parsePercent(raw, label);
    case 'integer':
      return parseInteger(raw, label);
    case 'string':
      if (raw.trim() === '') throw new UsageError(`${label}: ${STRING_EXPECTED}`);
      return raw;
  }
}

function unknownParameter(
  flag: string,
  name: string,
  specs: Record<string, ParameterSpec>,
  runbookId?: string,
) {
  const known = Object.keys(specs);
  const where = runbookId ? ` for runbook ${runbookId}` : '';
  const list = known.length ? `known: ${known.join(', ')}` : 'it declares no parameters';
  return new UsageError(`${flag}: unknown parameter "${name}"${where} (${list})`);
}

/**
 * Splits `--set name=value` flags into `{ name: raw }` and checks each name and value against the
 * runbook's parameters, so a typo fails before any connection is opened. A later flag for the same
 * name wins.
 */
export function parseSetFlags(
  sets: readonly string[],
  specs: Record<string, ParameterSpec>,
  runbookId: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const set of sets) {
    const eq = set.indexOf('=');
    const name = eq < 0 ? '' : set.slice(0, eq).trim();
    if (eq < 0 || name === '') throw new UsageError(`--set ${set}: expected name=value`);
    const raw = set.slice(eq + 1);
    const flag = `--set ${set}`;
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) throw unknownParameter(flag, name, specs, runbookId);
    parseParameterValue(spec.type, raw, flag);
    out[name] = raw;
  }
  return out;
}

/**
 * Every declared parameter's value: the override if given, else the default, parsed into seconds
 * or numbers; `undefined` when neither exists (the step that needs it says so at binding time).
 */
export function resolveParameters(
  specs: Record<string, ParameterSpec>,
  overrides: Record<string, string> = {},
  runbookId?: string,
): ParameterValues {
  for (const name of Object.keys(overrides)) {
    if (!Object.hasOwn(specs, name)) {
      throw unknownParameter(`--set ${name}=${overrides[name]}`, name, specs, runbookId);
    }
  }
  const values: ParameterValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    const override = Object.hasOwn(overrides, name) ? overrides[name] : undefined;
    if (override !== undefined) {
      values[name] = parseParameterValue(spec.type, override, `--set ${name}=${override}`);
    } else if (spec.default !== undefined) {
      const where = runbookId ? ` of runbook ${runbookId}` : '';
      values[name] = parseParameterValue(
        spec.type,
        spec.default,
        `parameter ${name}${where}: default "${spec.default}"`,
      );
    } else {
      values[name] = undefined;
    }
  }
  return values;
}

/** The values for a step's positional SQL parameters ($1…/?), in order; durations as seconds. */
export function bindParameters(
  names: readonly string[],
  values: ParameterValues,
): (number | string)[] {
  return names.map((name) => {
    const value = values[name];
    if (value === undefined) {
      throw new UsageError(`parameter "${name}" has no value: give one with --set ${name}=VALUE`);
    }
    return value;
  });
}

function display(value: unknown): string {
  // A number the server or Prometheus could not give (NaN, no series): never "null" in a message.
  if (value === null) return 'unknown';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Replaces `{name}` with `extra[name]` (e.g. `count`, `value`, a row's columns), else the
 * parameter's value; durations print as `5m`. Placeholders with no value are left as they are, so
 * an unset `{deployment}` shows what is missing and PromQL's `{job="x"}` is never touched.
 */
export function renderTemplate(
  text: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
  extra: Record<string, unknown> = {},
): string {
  // A unit right after a placeholder (`{wait_p95_ms} ms`, `{utilization_percent}%`) goes with its
  // number: a value that is not there reads `unknown`, not `unknown ms`.
  return text.replace(
    /\{([A-Za-z_][A-Za-z0-9_]*)\}((?: ?ms|%)(?![A-Za-z0-9]))?/g,
    (whole, name: string, unit: string | undefined = '') => {
      if (Object.hasOwn(extra, name) && extra[name] !== undefined)
        return extra[name] === null ? display(null) : `${display(extra[name])}${unit}`;
      const value = Object.hasOwn(values, name) ? values[name] : undefined;
      if (value === undefined) return whole;
      if (specs[name]?.type === 'duration' && typeof value === 'number')
        return `${formatDuration(value)}${unit}`;
      return `${String(value)}${unit}`;
    },
  );
}
