import { describe, expect, it } from 'vitest';
import { classifyTrend, type TrendPoint } from '../../src/wizard/trend.js';

/** Values sampled every `every` seconds from t = 1_700_000_000 (an arbitrary Unix time). */
function series(values: number[], every: number): TrendPoint[] {
  return values.map((v, i) => [1_700_000_000 + i * every, v]);
}

// exhaustion-response.md, "Connection Exhaustion Pattern Recognition": each table as a series of
// pool utilization in percent (the tables are out of a pool of 100).
describe('classifyTrend on the seed tables', () => {
  it('"Gradual Pool Exhaustion" (Pool_Usage every 15 min) is gradual', () => {
    const trend = classifyTrend(series([50, 68, 85, 97, 100], 15 * 60));
    expect(trend.kind).toBe('gradual');
    expect(trend.evidence).toContain('slows');
    expect(trend.evidence).toContain('50 → 100 over 1h');
  });

  it('"Sudden Connection Spike" (Connections every minute) is a spike', () => {
    const trend = classifyTrend(series([45, 95, 100, 100], 60));
    expect(trend.kind).toBe('spike');
    expect(trend.evidence).toContain('45 → 95 within 1m');
    expect(trend.evidence).toContain('91% of the 55-point rise');
  });

  it('"Connection Leak Pattern" (Actual_Conn every hour) is a leak', () => {
    const trend = classifyTrend(series([40, 50, 65, 85, 100], 3600));
    expect(trend.kind).toBe('leak');
    expect(trend.evidence).toContain('never gives back');
    expect(trend.evidence).toContain('late/early rate 1.40');
  });
});

describe('classifyTrend on other shapes', () => {
  it('a leak that filled the pool and stays full is still a leak (the plateau is the ceiling)', () => {
    const values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 100, 100, 100, 100, 100];
    expect(classifyTrend(series(values, 2)).kind).toBe('leak');
  });

  it('a flat series is none', () => {
    const trend = classifyTrend(series([40, 40, 41, 40, 40, 40], 60));
    expect(trend.kind).toBe('none');
    expect(trend.evidence).toContain('under the 10 a trend needs');
  });

  it('noise around a level, however wide, is none', () => {
    const trend = classifyTrend(series([30, 70, 35, 72, 28, 75, 33, 69, 31, 71], 60));
    expect(trend.kind).toBe('none');
  });

  it('a falling series is none', () => {
    expect(classifyTrend(series([90, 80, 70, 60, 50], 60)).kind).toBe('none');
  });

  it('a rise that wobbles with the load is gradual, not a leak', () => {
    const trend = classifyTrend(series([40, 52, 47, 60, 55, 68, 63, 76, 71, 84], 60));
    expect(trend.kind).toBe('gradual');
    expect(trend.evidence).toContain('largest drop 5');
  });

  it('too few samples are unknown, and NaN samples do not count', () => {
    expect(classifyTrend(series([40, 95, 100], 60)).kind).toBe('unknown');
    const withNaN = classifyTrend(series([40, Number.NaN, 95, 100], 60));
    expect(withNaN).toMatchObject({ kind: 'unknown', points: 3 });
    expect(withNaN.evidence).toBe('3 samples: too few to tell a trend (at least 4 needed)');
    expect(classifyTrend([]).kind).toBe('unknown');
  });
});
