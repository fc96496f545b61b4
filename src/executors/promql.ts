import { sanitizeRows } from '../io/sanitize.js';
import { parseDuration } from '../runbook/params.js';
import { renderArgs } from '../runbook/render.js';
import type { ParameterValues, PromqlStep } from '../runbook/types.js';
import type { Row } from '../targets/types.js';
import { classifyTrend, type TrendPoint } from '../wizard/trend.js';
import type { ReadExecutor } from './types.js';

/** Points per range query: enough for a trend, few enough to read at 3 AM. */
const RANGE_POINTS = 60;

/**
 * A PromQL step: one row per series, its labels as columns. An instant query gives `value`; a
 * range query gives the last, lowest and highest value over the range; with `trend: true` also
 * the series' shape (src/wizard/trend.ts), the numbers behind it and the points themselves.
 * Prometheus's NaN and ±Inf are no numbers a threshold can judge: they become null (and are left
 * out of the points).
 */
export const promqlExecutor: ReadExecutor<PromqlStep> = {
  role: 'read',
  async read(step, ctx) {
    const prometheus = await ctx.targets.prometheus();
    const [query] = renderArgs([step.query], ctx.values, ctx.runbook.parameters);
    if (step.range === undefined) {
      const samples = await prometheus.instant(query!);
      return sanitizeRows(samples.map((s) => ({ ...s.labels, value: finite(s.value) })));
    }
    const rangeS = rangeSeconds(step.range, ctx.values);
    const series = await prometheus.range(query!, rangeS, Math.max(1, rangeS / RANGE_POINTS));
    return sanitizeRows(
      series.map((s): Row => {
        const values = s.points.map(([, v]) => v).filter(Number.isFinite);
        const row: Row = {
          ...s.labels,
          last: finite(s.points.at(-1)?.[1]),
          min: values.length ? Math.min(...values) : null,
          max: values.length ? Math.max(...values) : null,
        };
        if (!step.trend) return row;
        const points = s.points.filter(([, v]) => Number.isFinite(v)) as TrendPoint[];
        const trend = classifyTrend(points);
        return { ...row, trend: trend.kind, trend_evidence: trend.evidence, points };
      }),
    );
  },
};

/** `1h`, or `{trend_window}`: a duration parameter, already parsed to seconds. */
export function rangeSeconds(range: string, values: ParameterValues): number {
  const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(range)?.[1];
  if (param === undefined) return parseDuration(range);
  const value = values[param];
  if (typeof value !== 'number') throw new Error(`range {${param}}: no duration given`);
  return value;
}

function finite(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}
