import { sanitizeRows } from '../io/sanitize.js';
import { parseDuration } from '../runbook/params.js';
import { renderArgs } from '../runbook/render.js';
import type { PromqlStep } from '../runbook/types.js';
import type { Row } from '../targets/types.js';
import type { ReadExecutor } from './types.js';

/** Points per range query: enough for a trend, few enough to read at 3 AM. */
const RANGE_POINTS = 60;

/**
 * A PromQL step: one row per series, its labels as columns. An instant query gives `value`; a
 * range query gives the last, lowest and highest value over the range. Prometheus's NaN and
 * ±Inf are no numbers a threshold can judge: they become null.
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
    const rangeS = parseDuration(step.range);
    const series = await prometheus.range(query!, rangeS, Math.max(1, rangeS / RANGE_POINTS));
    return sanitizeRows(
      series.map((s): Row => {
        const values = s.points.map(([, v]) => v).filter(Number.isFinite);
        return {
          ...s.labels,
          last: finite(s.points.at(-1)?.[1]),
          min: values.length ? Math.min(...values) : null,
          max: values.length ? Math.max(...values) : null,
        };
      }),
    );
  },
};

function finite(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}
