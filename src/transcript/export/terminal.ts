/**
 * `poolctl transcript show`: the incident's timeline on a terminal. Plain aligned columns; with
 * colour on a terminal, findings by severity and times dimmed.
 */
import type { ChalkInstance } from 'chalk';
import { clock, dateTime, elapsedLabel, span } from './describe.js';
import type { IncidentReport } from './model.js';

export function renderTimeline(r: IncidentReport, style: ChalkInstance, path: string): string {
  const s = r.summary;
  const multiDay = s.started?.slice(0, 10) !== s.ended?.slice(0, 10);
  const rows = r.timeline.map((t) => [
    multiDay ? dateTime(t.ts) : clock(t.ts),
    elapsedLabel(t.elapsedMs),
    t.event,
    t.code ? `${t.text} ${t.code}` : t.text,
    t.severity ?? '',
  ]);
  const head = ['TIME', 'ELAPSED', 'EVENT', 'WHAT HAPPENED', ''];
  const widths = [0, 1, 2].map((i) =>
    Math.max(head[i]!.length, ...rows.map((row) => row[i]!.length)),
  );
  const paint = (severity: string, text: string) =>
    severity === 'critical' ? style.red(text) : severity === 'warning' ? style.yellow(text) : text;
  const line = (row: string[], header = false) => {
    const [time, el, event, text, severity] = row as [string, string, string, string, string];
    const cells = [time.padEnd(widths[0]!), el.padStart(widths[1]!), event.padEnd(widths[2]!)];
    const left = header
      ? style.bold(cells.join('  '))
      : style.dim(cells.slice(0, 2).join('  ')) + '  ' + cells[2];
    return `${left}  ${header ? style.bold(text) : paint(severity, text)}`.trimEnd();
  };
  const status = `${s.status}${s.exitCode === null ? '' : `, exit ${s.exitCode}`}`;
  return [
    `${style.bold(`Incident ${s.incident}`)}  ${span(s.started, s.ended)}  ${status}`,
    style.dim(path),
    '',
    line(head, true),
    ...rows.map((row) => line(row)),
  ].join('\n');
}
