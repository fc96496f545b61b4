import type { ChalkInstance } from 'chalk';
import type { Row } from '../targets/types.js';
import type { TrendKind } from '../wizard/trend.js';

/** Rows of a trend step drawn, at most: the rest are in the JSON document and the transcript. */
const CHARTS = 3;
/** Ten rows: one per 10 % of the pool. */
const HEIGHT = 10;

type Plot = (
  series: number[],
  cfg: { height: number; min: number; max: number; format: (x: number) => string },
) => string;

/**
 * The series of a `trend: true` promql step as terminal charts (asciichart), each with its verdict
 * and the numbers behind it. asciichart loads here, on the human path only: JSON output and
 * `--help` never draw.
 */
export async function trendCharts(rows: Row[], style: ChalkInstance): Promise<string> {
  const drawn = rows.filter((r) => Array.isArray(r.points)).slice(0, CHARTS);
  if (drawn.length === 0) return '';
  // A CommonJS module: its functions arrive as the default export, or as named ones once bundled.
  const mod = (await import('asciichart')) as unknown as { plot?: Plot; default?: { plot: Plot } };
  const plot = mod.plot ?? mod.default!.plot;
  const parts: string[] = [];
  for (const row of drawn) {
    const points = row.points as [number, number][];
    const verdict = `${style.bold('Trend:')} ${kindText(style, row.trend as TrendKind)} ${style.dim(String(row.trend_evidence ?? ''))}`;
    if (points.length < 2) {
      parts.push(verdict);
      continue;
    }
    const values = points.map(([, v]) => v);
    const top = Math.max(100, Math.ceil(Math.max(...values) / 10) * 10);
    const chart = plot(values, {
      height: HEIGHT,
      min: 0,
      max: top,
      format: (x) => `${x.toFixed(0).padStart(4)}%`,
    });
    const from = clock(points[0]![0]);
    const to = clock(points.at(-1)![0]);
    parts.push(`${chart}\n${style.dim(`       ${from} … ${to} UTC`)}\n${verdict}`);
  }
  return parts.join('\n\n');
}

function kindText(style: ChalkInstance, kind: TrendKind): string {
  const text = String(kind).toUpperCase();
  if (kind === 'leak') return style.red.bold(text);
  if (kind === 'spike' || kind === 'gradual') return style.yellow.bold(text);
  return style.bold(text);
}

function clock(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
}
