/**
 * A rollout set against the pool's trend: "the pool began to fill 4 minutes after revision 7".
 * A leaky build fills its pool from the moment it runs, so a rollout shortly before the rise is
 * the stronger lead (DESIGN.md: a restart refills as fast as it leaks; a rollback does not).
 */
import type { Row } from '../targets/types.js';
import { kubeAge } from '../targets/kubernetes-objects.js';
import { DEFAULT_TREND_OPTIONS, type TrendPoint } from './trend.js';

/**
 * When the pool began to fill: the last sample at the level the final rise to the peak started
 * from (Unix seconds), or undefined when there is no rise of at least `minRise` points, or the
 * rise began before the window (then when it began is not known).
 */
export function fillStart(
  input: readonly TrendPoint[],
  minRise = DEFAULT_TREND_OPTIONS.minRise,
  tolerance = DEFAULT_TREND_OPTIONS.leakDropTolerance,
): number | undefined {
  const points = input
    .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v))
    .sort((a, b) => a[0] - b[0]);
  if (points.length < 2) return undefined;
  const values = points.map(([, v]) => v);
  const max = Math.max(...values);
  const peak = values.findIndex((v) => v >= max - tolerance / 2);
  // Back from the peak while the series keeps rising towards it (a dip of scrape jitter allowed).
  let start = peak;
  while (start > 0 && values[start - 1]! <= values[start]! + tolerance) start--;
  if (values[peak]! - values[start]! < minRise) return undefined;
  // The rise began at the last sample still at the starting level.
  const level = values[start]!;
  let last = start;
  for (let i = start; i <= peak; i++) if (values[i]! <= level + tolerance) last = i;
  if (last === 0) return undefined;
  return points[last]![0];
}

/**
 * Adds to the newest ReplicaSet row created at or before the fill began: `fill_after_rollout_s`
 * (seconds from the rollout to the start of the rise) and `fill_after_rollout` ("4m"), what a
 * finding judges and says. Other rows get null. `trendRows` are the trend step's rows (their
 * `points`); the fullest series' rise is used.
 */
export function setAgainstTrend(rows: Row[], trendRows: readonly Row[] | undefined): Row[] {
  const starts = (trendRows ?? [])
    .map((row) => (Array.isArray(row.points) ? fillStart(row.points as TrendPoint[]) : undefined))
    .filter((t): t is number => t !== undefined);
  const began = starts.length > 0 ? Math.min(...starts) : undefined;
  let culprit: Row | undefined;
  if (began !== undefined) {
    for (const row of rows) {
      const at = row.created_at;
      if (typeof at !== 'number' || at > began) continue;
      if (!culprit || at > (culprit.created_at as number)) culprit = row;
    }
  }
  for (const row of rows) {
    const after =
      row === culprit && began !== undefined
        ? Math.round(began - (row.created_at as number))
        : null;
    row.fill_after_rollout_s = after;
    row.fill_after_rollout = after === null ? '' : kubeAge(after);
    row.fill_began =
      row === culprit && began !== undefined ? new Date(began * 1000).toISOString() : '';
  }
  return rows;
}
