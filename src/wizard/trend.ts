/**
 * The shape of a pool's utilization over a window, as exhaustion-response.md's "Connection
 * Exhaustion Pattern Recognition" tells them apart:
 *
 * - **spike** ("Sudden Connection Spike", 45 → 95 → 100 → 100 in three minutes): most of the rise
 *   happens between two neighbouring samples, and the pool stays up there (noise jumps too, and
 *   falls back).
 * - **leak** ("Connection Leak Pattern", 40 → 50 → 65 → 85 → 100, "Growing, Accelerating"): a steady
 *   rise that never gives a connection back and keeps its pace or speeds up until the pool is full.
 *   A leaked connection is never returned, so the series never drops; the leak's own rate does not
 *   slow as the pool fills.
 * - **gradual** ("Gradual Pool Exhaustion", 50 → 68 → 85 → 97 → 100 %): a steady rise driven by
 *   load, which wobbles with the traffic or slows as it nears the ceiling.
 * - **none**: no steady rise (flat, falling, or noise around a level).
 * - **unknown**: too few samples to tell.
 *
 * The values are percentages of the pool (0–100); the thresholds below are in percentage points.
 */

export type TrendKind = 'gradual' | 'spike' | 'leak' | 'none' | 'unknown';

/** A sample: Unix seconds and the value (Prometheus's range-query point). */
export type TrendPoint = [number, number];

export interface TrendOptions {
  /** Fewer samples than this: unknown. Four is the seed's shortest table (the spike). */
  minPoints: number;
  /** A rise smaller than this many points over the window is no trend (flat or noise). */
  minRise: number;
  /** A spike: one step between neighbouring samples carries at least this share of the rise. */
  spikeShare: number;
  /** A steady rise: the straight line explains at least this share of the variance (R²). */
  minFit: number;
  /** A leak never gives back more than this many points between two samples (scrape jitter). */
  leakDropTolerance: number;
  /** A leak keeps its pace: the late half rises at least this fraction of the early half's rate. */
  leakPace: number;
}

export const DEFAULT_TREND_OPTIONS: TrendOptions = {
  minPoints: 4,
  minRise: 10,
  spikeShare: 0.5,
  minFit: 0.6,
  leakDropTolerance: 3,
  leakPace: 0.8,
};

export interface Trend {
  kind: TrendKind;
  /** The numbers behind the verdict, one line. */
  evidence: string;
  /** The samples classified (finite values only), oldest first. */
  points: number;
  first?: number;
  last?: number;
  min?: number;
  max?: number;
}

export function classifyTrend(
  input: readonly TrendPoint[],
  options: Partial<TrendOptions> = {},
): Trend {
  const opts = { ...DEFAULT_TREND_OPTIONS, ...options };
  const points = input
    .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v))
    .sort((a, b) => a[0] - b[0]);
  const n = points.length;
  if (n < opts.minPoints || points[n - 1]![0] === points[0]![0]) {
    return {
      kind: 'unknown',
      evidence: `${n} sample${n === 1 ? '' : 's'}: too few to tell a trend (at least ${opts.minPoints} needed)`,
      points: n,
    };
  }
  const values = points.map(([, v]) => v);
  const first = values[0]!;
  const last = values[n - 1]!;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const shape = { points: n, first, last, min, max };
  const span = formatSpan(points[n - 1]![0] - points[0]![0]);
  const path = `${fmt(first)} → ${fmt(last)} over ${span} (min ${fmt(min)}, max ${fmt(max)}, ${n} samples)`;

  // Spike: the biggest rise between neighbours, against the whole rise up to the peak.
  const peakAt = values.indexOf(max);
  const lowBeforePeak = Math.min(...values.slice(0, peakAt + 1));
  const riseToPeak = max - lowBeforePeak;
  let jump = 0;
  let jumpAt = 0;
  for (let i = 1; i <= peakAt; i++) {
    const step = values[i]! - values[i - 1]!;
    if (step > jump) [jump, jumpAt] = [step, i];
  }
  // The new level holds: everything after the jump stays above everything before it by a share
  // of the rise, as in the seed's table (45 before, 95 and more after).
  const held = Math.min(...values.slice(jumpAt)) - Math.max(...values.slice(0, jumpAt));
  const share = opts.spikeShare * riseToPeak;
  if (jump >= opts.minRise && riseToPeak > 0 && jump >= share && held >= share) {
    const seconds = points[jumpAt]![0] - points[jumpAt - 1]![0];
    return {
      kind: 'spike',
      evidence:
        `${fmt(values[jumpAt - 1]!)} → ${fmt(values[jumpAt]!)} within ${formatSpan(seconds)}: ` +
        `${pct(jump / riseToPeak)} of the ${fmt(riseToPeak)}-point rise in one step; ${path}`,
      ...shape,
    };
  }

  const fit = linearFit(points);
  const fittedRise = fit.slope * (points[n - 1]![0] - points[0]![0]);
  if (fittedRise < opts.minRise || fit.r2 < opts.minFit) {
    const why =
      fittedRise < opts.minRise
        ? `the fitted line moves ${signed(fittedRise)} points, under the ${opts.minRise} a trend needs`
        : `no steady rise (a straight line explains ${pct(fit.r2)} of it, ${pct(opts.minFit)} needed)`;
    return { kind: 'none', evidence: `${why}; ${path}`, ...shape };
  }

  // A steady rise. The pace is compared on the rise itself: once the pool is full the series
  // cannot climb further, which says nothing about the leak's rate.
  const fullAt = values.findIndex((v) => v >= max - opts.leakDropTolerance / 2);
  const rising = points.slice(0, Math.max(fullAt + 1, Math.min(3, n)));
  const worstDrop = Math.max(0, ...values.slice(1).map((v, i) => values[i]! - v));
  const pace = paceRatio(rising);
  const paceText = `late/early rate ${pace === null ? 'n/a' : pace.toFixed(2)}`;
  const dropText = `largest drop ${fmt(worstDrop)}`;
  if (worstDrop <= opts.leakDropTolerance && pace !== null && pace >= opts.leakPace) {
    return {
      kind: 'leak',
      evidence: `rises and never gives back (${dropText}), not slowing (${paceText}); ${path}`,
      ...shape,
    };
  }
  const slowing = pace !== null && pace < opts.leakPace;
  return {
    kind: 'gradual',
    evidence:
      `steady rise (R² ${fit.r2.toFixed(2)}) that ${slowing ? 'slows' : 'wobbles'} ` +
      `(${paceText}, ${dropText}); ${path}`,
    ...shape,
  };
}

/** Least squares through the points: the slope per second and R². */
function linearFit(points: readonly TrendPoint[]): { slope: number; r2: number } {
  const n = points.length;
  const mt = points.reduce((s, [t]) => s + t, 0) / n;
  const mv = points.reduce((s, [, v]) => s + v, 0) / n;
  let stt = 0;
  let stv = 0;
  let svv = 0;
  for (const [t, v] of points) {
    stt += (t - mt) ** 2;
    stv += (t - mt) * (v - mv);
    svv += (v - mv) ** 2;
  }
  const slope = stt === 0 ? 0 : stv / stt;
  const r2 = svv === 0 ? 0 : (stv * stv) / (stt * svv);
  return { slope, r2 };
}

/** The rate over the late half of the rise divided by the rate over the early half. */
function paceRatio(points: readonly TrendPoint[]): number | null {
  if (points.length < 3) return null;
  const mid = Math.floor((points.length - 1) / 2);
  const rate = (a: TrendPoint, b: TrendPoint) => (b[1] - a[1]) / (b[0] - a[0]);
  const early = rate(points[0]!, points[mid]!);
  const late = rate(points[mid]!, points.at(-1)!);
  if (!(early > 0)) return late > 0 ? Infinity : null;
  return late / early;
}

function fmt(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function signed(v: number): string {
  return v >= 0 ? `+${fmt(v)}` : fmt(v);
}

function pct(share: number): string {
  return `${Math.round(share * 100)}%`;
}

function formatSpan(seconds: number): string {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${Math.round(seconds)}s`;
}
