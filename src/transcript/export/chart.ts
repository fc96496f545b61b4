/**
 * The utilization chart of the HTML export: an inline SVG (no script, no external request) with
 * time on x, utilization % on y, the warning and critical thresholds as dashed lines and each
 * executed action as a marker. Colours are attributes, not CSS, so the SVG also stands alone.
 */
import { clock } from './describe.js';
import { html } from './escape.js';
import type { IncidentReport } from './model.js';

const COLORS: Record<string, string> = { warning: '#9a6700', critical: '#cf222e' };
const W = 760;
const H = 260;
const M = { left: 48, right: 16, top: 16, bottom: 36 };

export function utilizationChart(r: IncidentReport): string {
  const points = r.measurements
    .filter((m) => m.metrics.utilization_percent !== undefined)
    .map((m) => ({ t: Date.parse(m.ts), u: m.metrics.utilization_percent!, m }))
    .filter((p) => !Number.isNaN(p.t));
  if (points.length === 0) return '<p class="muted">No utilization was measured.</p>';

  const s = r.summary;
  const starts = [Date.parse(s.started ?? ''), ...points.map((p) => p.t)].filter(
    (t) => !Number.isNaN(t),
  );
  const ends = [Date.parse(s.ended ?? ''), ...points.map((p) => p.t)].filter(
    (t) => !Number.isNaN(t),
  );
  const t0 = Math.min(...starts);
  const t1 = Math.max(t0 + 1000, ...ends);
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
  const thresholds: [string, number | undefined][] = [
    ['warning', s.thresholds.warning],
    ['critical', s.thresholds.critical],
  ];
  for (const [name, value] of thresholds) {
    if (value === undefined) continue;
    parts.push(
      `<line stroke="${COLORS[name]}" stroke-dasharray="6 4" x1="${M.left}" x2="${W - M.right}" y1="${f(y(value))}" y2="${f(y(value))}"/>`,
      `<text font-size="11" fill="${COLORS[name]}" x="${W - M.right - 4}" y="${f(y(value) - 4)}" text-anchor="end">${name} ${value}%</text>`,
    );
  }
  for (const a of r.actions.filter((a) => a.executed)) {
    const t = Date.parse(a.ts);
    if (Number.isNaN(t)) continue;
    parts.push(
      `<line stroke="#8250df" stroke-dasharray="2 3" x1="${f(x(t))}" x2="${f(x(t))}" y1="${M.top}" y2="${H - M.bottom}"/>`,
      `<text font-size="11" fill="#8250df" x="${f(x(t) + 4)}" y="${M.top + 12}">${html(a.id)}</text>`,
    );
  }
  parts.push(
    `<polyline fill="none" stroke="#0969da" stroke-width="2" points="${points.map((p) => `${f(x(p.t))},${f(y(p.u))}`).join(' ')}"/>`,
  );
  for (const p of points) {
    parts.push(
      `<circle fill="#0969da" cx="${f(x(p.t))}" cy="${f(y(p.u))}" r="4"><title>${html(
        `${clock(p.m.ts)} ${p.m.label}: ${p.u}%`,
      )}</title></circle>`,
    );
  }
  const axisY = H - M.bottom + 16;
  parts.push(
    `<text font-size="11" fill="#59636e" x="${M.left}" y="${axisY}">${html(clock(new Date(t0).toISOString()))}</text>`,
    `<text font-size="11" fill="#59636e" x="${W - M.right}" y="${axisY}" text-anchor="end">${html(clock(new Date(t1).toISOString()))} UTC</text>`,
  );
  const label = `Utilization over the incident: ${points.map((p) => `${p.u}%`).join(', ')}`;
  return `<svg class="chart" font-family="system-ui, sans-serif" viewBox="0 0 ${W} ${H}" role="img" aria-label="${html(label)}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}
