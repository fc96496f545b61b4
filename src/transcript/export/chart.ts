/**
 * The charts of the HTML export: inline SVGs (no script, no external request) with time on x,
 * utilization % on y. The incident's utilization carries the warning and critical thresholds as
 * dashed lines and each executed action as a marker; a trend step's series (a range query over
 * `trend_window`) is drawn the same way with its verdict. Colours are attributes, not CSS, so each
 * SVG also stands alone.
 */
import type { Row } from '../../targets/types.js';
import { clock } from './describe.js';
import { html } from './escape.js';
import type { IncidentReport, StepEvidence } from './model.js';

const COLORS: Record<string, string> = { warning: '#9a6700', critical: '#cf222e' };
const W = 760;
const H = 260;
const M = { left: 48, right: 16, top: 16, bottom: 36 };

interface ChartPoint {
  /** Milliseconds since the epoch. */
  t: number;
  u: number;
  /** The tooltip of the point; none for a dense series. */
  title?: string;
}

interface LineChart {
  points: ChartPoint[];
  /** The time axis; defaults to the points' first and last. */
  t0?: number;
  t1?: number;
  thresholds: [string, number | undefined][];
  markers: { t: number; label: string }[];
  label: string;
}

export function utilizationChart(r: IncidentReport): string {
  const points = r.measurements
    .filter((m) => m.metrics.utilization_percent !== undefined)
    .map((m) => ({
      t: Date.parse(m.ts),
      u: m.metrics.utilization_percent!,
      title: `${clock(m.ts)} ${m.label}: ${m.metrics.utilization_percent}%`,
    }))
    .filter((p) => !Number.isNaN(p.t));
  if (points.length === 0) return '<p class="muted">No utilization was measured.</p>';

  const s = r.summary;
  const starts = [Date.parse(s.started ?? ''), ...points.map((p) => p.t)].filter(
    (t) => !Number.isNaN(t),
  );
  const ends = [Date.parse(s.ended ?? ''), ...points.map((p) => p.t)].filter(
    (t) => !Number.isNaN(t),
  );
  return lineChart({
    points,
    t0: Math.min(...starts),
    t1: Math.max(...ends),
    thresholds: [
      ['warning', s.thresholds.warning],
      ['critical', s.thresholds.critical],
    ],
    markers: r.actions
      .filter((a) => a.executed)
      .map((a) => ({ t: Date.parse(a.ts), label: a.id }))
      .filter((m) => !Number.isNaN(m.t)),
    label: `Utilization over the incident: ${points.map((p) => `${p.u}%`).join(', ')}`,
  });
}

/**
 * The series of a trend step's rows (`points`: [unix seconds, percent][]), each with its verdict
 * and the numbers behind it; '' for a step without one.
 */
export function trendCharts(e: StepEvidence, r: IncidentReport): string {
  const s = r.summary;
  return e.rows
    .filter((row): row is Row & { points: [number, number][] } => Array.isArray(row.points))
    .slice(0, 3)
    .map((row) => {
      const points = row.points
        .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v))
        .map(([t, v]) => ({ t: t * 1000, u: v }));
      const verdict = `${e.title}: ${String(row.trend ?? 'unknown')}`;
      const chart =
        points.length === 0
          ? ''
          : lineChart({
              points,
              thresholds: [
                ['warning', s.thresholds.warning],
                ['critical', s.thresholds.critical],
              ],
              markers: [],
              label: `${verdict} (${String(row.trend_evidence ?? '')})`,
            });
      return `${chart}<p><strong>${html(verdict)}</strong> ${html(row.trend_evidence ?? '')}</p>`;
    })
    .join('\n');
}

function lineChart(c: LineChart): string {
  const { points } = c;
  const t0 = c.t0 ?? Math.min(...points.map((p) => p.t));
  const t1 = Math.max(t0 + 1000, c.t1 ?? Math.max(...points.map((p) => p.t)));
  const top = Math.max(100, Math.ceil(Math.max(...points.map((p) => p.u)) / 10) * 10);
  const x = (t: number) => M.left + ((t - t0) / (t1 - t0)) * (W - M.left - M.right);
  const y = (u: number) => M.top + (1 - u / top) * (H - M.top - M.bottom);
  const f = (n: number) => n.toFixed(1);

  const parts: string[] = [];
  for (let u = 0; u <= top; u += 25) {
    parts.push(
      `<line stroke="#eaeef2" x1="${M.left}" x2="${W - M.right}" y1="${f(y(u))}" y2="${f(y(u))}"/>`,
      `<text font-size="11" fill="#59636e" x="${M.left - 6}" y="${f(y(u) + 4)}" text-anchor="end">${u}%</text>`,
    );
  }
  for (const [name, value] of c.thresholds) {
    if (value === undefined) continue;
    parts.push(
      `<line stroke="${COLORS[name]}" stroke-dasharray="6 4" x1="${M.left}" x2="${W - M.right}" y1="${f(y(value))}" y2="${f(y(value))}"/>`,
      `<text font-size="11" fill="${COLORS[name]}" x="${W - M.right - 4}" y="${f(y(value) - 4)}" text-anchor="end">${name} ${value}%</text>`,
    );
  }
  for (const m of c.markers) {
    parts.push(
      `<line stroke="#8250df" stroke-dasharray="2 3" x1="${f(x(m.t))}" x2="${f(x(m.t))}" y1="${M.top}" y2="${H - M.bottom}"/>`,
      `<text font-size="11" fill="#8250df" x="${f(x(m.t) + 4)}" y="${M.top + 12}">${html(m.label)}</text>`,
    );
  }
  parts.push(
    `<polyline fill="none" stroke="#0969da" stroke-width="2" points="${points.map((p) => `${f(x(p.t))},${f(y(p.u))}`).join(' ')}"/>`,
  );
  for (const p of points) {
    if (p.title === undefined) continue;
    parts.push(
      `<circle fill="#0969da" cx="${f(x(p.t))}" cy="${f(y(p.u))}" r="4"><title>${html(p.title)}</title></circle>`,
    );
  }
  const axisY = H - M.bottom + 16;
  parts.push(
    `<text font-size="11" fill="#59636e" x="${M.left}" y="${axisY}">${html(clock(new Date(t0).toISOString()))}</text>`,
    `<text font-size="11" fill="#59636e" x="${W - M.right}" y="${axisY}" text-anchor="end">${html(clock(new Date(t1).toISOString()))} UTC</text>`,
  );
  return `<svg class="chart" font-family="system-ui, sans-serif" viewBox="0 0 ${W} ${H}" role="img" aria-label="${html(c.label)}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}
