import { sanitizeRows } from '../io/sanitize.js';
import { parseDuration } from '../runbook/params.js';
import { renderArgs } from '../runbook/render.js';
import type { ParameterValues, PromqlStep } from '../runbook/types.js';
import type { PromSample, PrometheusTarget } from '../targets/prometheus.js';
import type { Row } from '../targets/types.js';
import { classifyTrend, type TrendPoint } from '../wizard/trend.js';
import type { ReadExecutor } from './types.js';

/** Points per range query: enough for a trend, few enough to read at 3 AM. */
const RANGE_POINTS = 60;

/**
 * A PromQL step: one row per series, its labels as columns. An instant query gives `value`; a
 * range query gives the last, lowest and highest value over the range; with `trend: true` also
 * the series' shape (src/wizard/trend.ts), the numbers behind it and the points themselves;
 * `queries` give one column each, joined on the `by` label into one row per replica (`replica`).
 * Prometheus's NaN and ±Inf are no numbers a threshold can judge: they become null (and are left
 * out of the points), which verify counts as not measured.
 */
export const promqlExecutor: ReadExecutor<PromqlStep> = {
  role: 'read',
  async read(step, ctx) {
    const prometheus = await ctx.targets.prometheus();
    const render = (text: string) => renderArgs([text], ctx.values, ctx.runbook.parameters)[0]!;
    if (step.queries) return sanitizeRows(await joined(step, prometheus, render));
    const query = render(step.query ?? '');
    if (step.range === undefined) {
      const samples = await prometheus.instant(query);
      return sanitizeRows(samples.map((s) => ({ ...s.labels, value: finite(s.value) })));
    }
    const rangeS = rangeSeconds(step.range, ctx.values);
    const series = await prometheus.range(query, rangeS, Math.max(1, rangeS / RANGE_POINTS));
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

/**
 * The columns' queries, run together, as one row per value of the `by` label. A replica missing
 * from one query's answer gets null there: a number that could not be read, not a zero.
 */
async function joined(
  step: PromqlStep,
  prometheus: PrometheusTarget,
  render: (text: string) => string,
): Promise<Row[]> {
  const by = step.by !== undefined ? render(step.by) : undefined;
  const columns = Object.entries(step.queries ?? {});
  const answers = await Promise.all(columns.map(([, text]) => prometheus.instant(render(text))));
  const rows = new Map<string, Row>();
  const keyOf = (s: PromSample) => (by !== undefined ? (s.labels[by] ?? '') : '');
  // An exporter's rows are servers, the application's are replicas.
  const keyColumn = step.side === 'server' ? 'server' : 'replica';
  answers.forEach((samples, i) => {
    for (const sample of samples) {
      const key = keyOf(sample);
      const row = rows.get(key) ?? { [keyColumn]: key };
      row[columns[i]![0]] = finite(sample.value);
      rows.set(key, row);
    }
  });
  return [...rows.values()]
    .map((row) => {
      for (const [column] of columns) row[column] ??= null;
      return row;
    })
    .sort((a, b) => String(a[keyColumn]).localeCompare(String(b[keyColumn])));
}

/** `1h`, or `{trend_window}`: a duration parameter, already parsed to seconds. */
export function rangeSeconds(range: string, values: ParameterValues): number {
  const param = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(range)?.[1];
  if (param === undefined) return parseDuration(range);
  const value = values[param];
  if (typeof value !== 'number') throw new Error(`range {${param}}: no duration given`);
  return value;
}

/** A number a threshold can judge, to two decimals (96.67%, 47.5 ms); NaN and ±Inf are none. */
function finite(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? Math.round(value * 100) / 100 : null;
}
