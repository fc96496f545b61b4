import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import {
  bindParameters,
  formatDuration,
  parseDuration,
  parseInteger,
  parsePercent,
  parseSetFlags,
  renderTemplate,
  resolveParameters,
} from '../../src/runbook/params.js';
import type { ParameterSpec } from '../../src/runbook/types.js';

const specs: Record<string, ParameterSpec> = {
  long_query_after: { type: 'duration', default: '30s', description: 'list long queries' },
  kill_idle_after: { type: 'duration', default: '5m', description: 'kill idle' },
  utilization_critical: { type: 'percent', default: '95', description: 'critical' },
  replicas: { type: 'integer', default: '3', description: 'instances' },
  deployment: { type: 'string', description: 'the Deployment' },
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('parseDuration', () => {
  it.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['1h30m', 5400],
    ['2m15s', 135],
    ['90', 90],
    ['1.5s', 1.5],
    ['250ms', 0.25],
    ['1s500ms', 1.5],
    ['0', 0],
    ['1d', 86400],
    [' 5m ', 300],
  ])('%s is %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each([
    ['5x', '"5x": expected a duration like 30s, 5m or 1h'],
    ['m', '"m": expected a duration like 30s, 5m or 1h'],
    ['5m1h', '"5m1h": expected a duration like 30s, 5m or 1h'],
    ['5 m', '"5 m": expected a duration like 30s, 5m or 1h'],
    ['-5m', '"-5m": expected a duration like 30s, 5m or 1h, not a negative one'],
    ['', '"": expected a duration like 30s, 5m or 1h, got nothing'],
  ])('rejects %j', (text, message) => {
    expect(errorOf(() => parseDuration(text))).toBe(message);
  });

  it('starts the message with the label it is given', () => {
    expect(errorOf(() => parseDuration('soon', '--wait soon'))).toBe(
      '--wait soon: expected a duration like 30s, 5m or 1h',
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [30, '30s'],
    [300, '5m'],
    [3600, '1h'],
    [5400, '1h30m'],
    [90, '1m30s'],
    [1.5, '1.5s'],
    [0.25, '250ms'],
    [0, '0s'],
    [90000, '25h'],
  ])('%d seconds print as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it.each(['30s', '5m', '1h30m', '1.5s', '250ms', '2m15s'])('%s survives a round trip', (text) => {
    expect(formatDuration(parseDuration(text))).toBe(text);
  });
});

describe('parsePercent and parseInteger', () => {
  it.each([
    ['90', 90],
    ['90%', 90],
    ['0', 0],
    ['100', 100],
    ['99.5%', 99.5],
  ])('percent %s is %d', (text, n) => expect(parsePercent(text)).toBe(n));

  it.each(['101', '-1', 'ninety', '', '90%%'])('percent rejects %j', (text) => {
    expect(errorOf(() => parsePercent(text))).toBe(
      `"${text}": expected a percentage from 0 to 100, like 90 or 90%`,
    );
  });

  it('integers', () => {
    expect(parseInteger('20')).toBe(20);
    expect(parseInteger('0')).toBe(0);
    expect(errorOf(() => parseInteger('1.5'))).toBe('"1.5": expected a whole number like 20');
    expect(errorOf(() => parseInteger('-1'))).toBe(
      '"-1": expected a whole number like 20, not a negative one',
    );
    expect(errorOf(() => parseInteger('20k'))).toBe('"20k": expected a whole number like 20');
  });
});

describe('parseSetFlags', () => {
  const id = 'postgres/pool-exhausted';

  it('returns raw values by name, the last flag winning', () => {
    expect(
      parseSetFlags(['kill_idle_after=10m', 'deployment=api=v2', 'kill_idle_after=2m'], specs, id),
    ).toEqual({
      kill_idle_after: '2m',
      deployment: 'api=v2',
    });
  });

  it.each([
    [['kill_idle_after=5x'], '--set kill_idle_after=5x: expected a duration like 30s, 5m or 1h'],
    [
      ['foo=1'],
      '--set foo=1: unknown parameter "foo" for runbook postgres/pool-exhausted ' +
        '(known: long_query_after, kill_idle_after, utilization_critical, replicas, deployment)',
    ],
    [['long_query_after'], '--set long_query_after: expected name=value'],
    [['=5m'], '--set =5m: expected name=value'],
    [
      ['utilization_critical=120'],
      '--set utilization_critical=120: expected a percentage from 0 to 100, like 90 or 90%',
    ],
    [['replicas=two'], '--set replicas=two: expected a whole number like 20'],
    [['deployment='], '--set deployment=: expected a non-empty value'],
    [
      ['toString=1'],
      '--set toString=1: unknown parameter "toString" for runbook postgres/pool-exhausted ' +
        '(known: long_query_after, kill_idle_after, utilization_critical, replicas, deployment)',
    ],
  ])('%j fails with one line naming the flag', (sets, message) => {
    expect(errorOf(() => parseSetFlags(sets, specs, id))).toBe(message);
  });
});

describe('resolveParameters and bindParameters', () => {
  it('applies defaults, parses every value and leaves parameters without a default undefined', () => {
    expect(resolveParameters(specs, { kill_idle_after: '10m', replicas: '5' })).toEqual({
      long_query_after: 30,
      kill_idle_after: 600,
      utilization_critical: 95,
      replicas: 5,
      deployment: undefined,
    });
  });

  it('names the flag of a bad override and rejects unknown names', () => {
    expect(errorOf(() => resolveParameters(specs, { replicas: 'x' }))).toBe(
      '--set replicas=x: expected a whole number like 20',
    );
    expect(errorOf(() => resolveParameters({}, { foo: '1' }, 'postgres/x'))).toBe(
      '--set foo=1: unknown parameter "foo" for runbook postgres/x (it declares no parameters)',
    );
  });

  it('binds positionally, durations as seconds', () => {
    const values = resolveParameters(specs, { deployment: 'api' });
    expect(
      bindParameters(['kill_idle_after', 'deployment', 'utilization_critical'], values),
    ).toEqual([300, 'api', 95]);
    expect(bindParameters([], values)).toEqual([]);
  });

  it('names the parameter and --set when a bound value is missing', () => {
    const values = resolveParameters(specs, {});
    expect(errorOf(() => bindParameters(['deployment'], values))).toBe(
      'parameter "deployment" has no value: give one with --set deployment=VALUE',
    );
  });
});

describe('renderTemplate', () => {
  const values = resolveParameters(specs, { kill_idle_after: '90m' });

  it('prints durations as typed, other parameters as they are, and extra values first', () => {
    expect(
      renderTemplate(
        '{count} idle past {kill_idle_after}, critical at {utilization_critical}%, {replicas} pods',
        values,
        specs,
        {
          count: 12,
        },
      ),
    ).toBe('12 idle past 1h30m, critical at 95%, 3 pods');
    expect(renderTemplate('{replicas}', values, specs, { replicas: 'row' })).toBe('row');
  });

  it('leaves unknown and unset placeholders, and PromQL braces, as they are', () => {
    expect(renderTemplate('deployment/{deployment} {nope} x{job="a"} {}', values, specs)).toBe(
      'deployment/{deployment} {nope} x{job="a"} {}',
    );
  });

  it('prints a missing number as unknown and dates from rows readably', () => {
    expect(
      renderTemplate('{a} {b}', {}, {}, { a: null, b: new Date('2024-01-02T03:04:05Z') }),
    ).toBe('unknown 2024-01-02T03:04:05.000Z');
  });

  it("keeps a unit with its number: a missing one reads 'unknown', not 'unknown ms'", () => {
    const text = 'wait p95 {w} ms; at {p}%; {n} msgs';
    expect(renderTemplate(text, {}, {}, { w: null, p: null, n: 3 })).toBe(
      'wait p95 unknown; at unknown; 3 msgs',
    );
    expect(renderTemplate(text, {}, {}, { w: 2375, p: 100, n: 3 })).toBe(
      'wait p95 2375 ms; at 100%; 3 msgs',
    );
  });
});
