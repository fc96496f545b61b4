/**
 * The exports of one incident transcript: `md` for the postmortem, `json` for tools, `html` for
 * a page with the utilization chart. Each is a pure function of the events.
 */
import { sanitizeValue } from '../../io/sanitize.js';
import type { RecordedEvent } from '../types.js';
import { toHtml } from './html.js';
import { toMarkdown, type ExportContext } from './markdown.js';
import { buildIncident, type BuildOptions, type IncidentReport } from './model.js';

export type ExportFormat = 'md' | 'json' | 'html';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['md', 'json', 'html'];

export { buildIncident, toHtml, toMarkdown };
export type { ExportContext, IncidentReport };

/** `{ incident, events, summary }`: the events as read (sanitized again) and the computed summary. */
export function toJson(report: IncidentReport, events: RecordedEvent[]): string {
  const doc = {
    incident: report.summary.incident,
    events: sanitizeValue(events),
    summary: { ...report.summary, measurements: report.measurements },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function exportIncident(
  format: ExportFormat,
  events: RecordedEvent[],
  opts: BuildOptions & ExportContext,
): string {
  const report = buildIncident(events, opts);
  if (format === 'json') return toJson(report, events);
  if (format === 'html') return toHtml(report, opts);
  return toMarkdown(report, opts);
}
