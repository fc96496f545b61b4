/**
 * The Markdown a postmortem is written from: summary with the before → after numbers, timeline,
 * evidence, actions (who was killed, who was spared and why), findings, what is left to do by
 * hand, and the operator's notes. Every server-provided string goes through `mdText` or `mdCode`.
 */
import {
  layoutRows,
  type ActionReport,
  type IncidentReport,
  type Row,
  type StepEvidence,
} from './model.js';
import {
  HEADLINE,
  QUERY_CHARS,
  SPARED_HEADERS,
  VICTIM_HEADERS,
  actionTables,
  beforeAfterLine,
  clip,
  clock,
  dateTime,
  duration,
  elapsedLabel,
  metricValue,
  outcomesLine,
  INTERRUPTED_NOTE,
  plural,
  span,
} from './describe.js';
import { capacityVerdict } from '../../wizard/capacity.js';
import { QUERY_COLUMNS, mdCode, mdTable, mdText } from './escape.js';

/** Rows of a step's result shown in the evidence; the JSON export has all the transcript kept. */
export const EVIDENCE_ROWS = 20;
/** Victims listed per action; the count by application covers the rest. */

export interface ExportContext {
  /** The transcript file, named in the footer. */
  source?: string;
  poolctl?: string;
}

export function toMarkdown(r: IncidentReport, ctx: ExportContext = {}): string {
  const s = r.summary;
  const out: string[] = [`# Incident ${mdText(s.incident)}: ${span(s.started, s.ended)}`, ''];
  for (const w of s.warnings) out.push(`> **Warning:** ${mdText(w)}`, '');
  out.push('## Summary', '', ...summaryLines(r), '');
  out.push(...beforeAfterTable(r), '');

  out.push('## Timeline', '');
  const multiDay = s.started?.slice(0, 10) !== s.ended?.slice(0, 10);
  out.push(
    mdTable(
      ['Time (UTC)', 'Elapsed', 'Event', 'What happened'],
      r.timeline.map((t) => [
        multiDay ? dateTime(t.ts) : clock(t.ts),
        elapsedLabel(t.elapsedMs),
        mdText(t.event),
        t.code ? `${mdText(t.text)} ${mdCode(t.code)}` : mdText(t.text),
      ]),
      [1],
    ),
    '',
  );

  out.push('## Evidence', '');
  const shown = r.evidence.filter((e) => e.status !== 'skipped');
  if (shown.length === 0) out.push('No step returned a result.', '');
  for (const e of shown) out.push(...evidence(e), '');
  const skipped = r.evidence.filter((e) => e.status === 'skipped');
  if (skipped.length)
    out.push(
      `Skipped: ${skipped.map((e) => `${mdText(e.title)} (${mdText(e.step)})`).join(', ')}.`,
      '',
    );

  out.push('## Actions', '');
  if (r.actions.length === 0) out.push('No action was taken.', '');
  for (const a of r.actions) out.push(...action(a), '');

  out.push('## Findings', '');
  if (r.findings.length === 0) out.push('No findings.', '');
  else
    out.push(
      mdTable(
        ['Time (UTC)', 'Severity', 'Finding', 'Message', 'Sessions', 'Suggests'],
        r.findings.map((f) => [
          clock(f.ts),
          mdText(f.severity),
          mdText(f.id),
          mdText(f.message),
          f.count === undefined ? '' : String(f.count),
          f.suggest.map(mdText).join(', '),
        ]),
        [4],
      ),
      '',
    );

  out.push('## To do by hand', '');
  if (r.manual.length === 0) out.push('Nothing.', '');
  else
    out.push(
      mdTable(
        ['Status', 'Step', 'Command', 'Notes'],
        r.manual.map((m) => [
          mdText(m.status),
          `${mdText(m.title)} (${mdText(m.step)})`,
          mdCode(m.command),
          m.notes.map(mdText).join('<br>'),
        ]),
      ),
      '',
    );

  out.push('## Operator notes', '');
  if (r.notes.length === 0) out.push('None recorded.', '');
  for (const n of r.notes) {
    const lines = n.text.split('\n').map(mdText);
    const where = n.step ? ` (on ${mdText(n.step)})` : '';
    out.push(`- ${clock(n.ts)}${where}: ${lines.join('  \n  ')}`);
  }
  if (r.notes.length) out.push('');

  const from = ctx.source ? ` from ${mdCode(ctx.source, { inTable: false })}` : '';
  out.push('---', '', `Exported by poolctl${ctx.poolctl ? ` ${ctx.poolctl}` : ''}${from}.`, '');
  return out.join('\n');
}

function summaryLines(r: IncidentReport): string[] {
  const s = r.summary;
  const code = (t: string) => mdCode(t, { inTable: false });
  const runs = s.runs.map(
    (run) =>
      `${mdText(run.command)}${run.mode ? ` (${mdText(run.mode)})` : ''} → ${
        run.status === undefined
          ? 'no end recorded'
          : `${mdText(run.status)}, exit ${run.exitCode ?? '?'}`
      }`,
  );
  const f = s.findings;
  const findings = [
    f.critical ? `${f.critical} critical` : '',
    f.warning ? `${f.warning} warning` : '',
    f.info ? `${f.info} info` : '',
  ].filter(Boolean);
  const act = s.actions;
  const actions = [
    act.executed ? `${act.executed} executed` : '',
    act.declined ? `${act.declined} declined` : '',
    act.dryRun ? `${act.dryRun} dry run` : '',
  ].filter(Boolean);
  const outcomes = outcomesLine(s.actions.outcomes);
  const manual = Object.entries(s.manual).map(([k, n]) => `${n} ${mdText(k)}`);
  return [
    `- **Target${s.targets.length === 1 ? '' : 's'}:** ${s.targets.map(code).join(', ') || 'none recorded'}`,
    `- **Runbook${s.runbooks.length === 1 ? '' : 's'}:** ${s.runbooks.map(mdText).join(', ') || 'none recorded'}`,
    `- **Runs:** ${runs.join('; ') || 'none recorded'}`,
    `- **Final status:** ${mdText(s.status)}, exit code ${s.exitCode ?? 'none'}`,
    `- **Run by:** ${s.operators.map(mdText).join(', ') || 'not recorded in the transcript'}`,
    `- **Duration:** ${duration(s.durationMs)} (${plural(s.events, 'event')})`,
    `- **Findings:** ${findings.join(', ') || 'none'}`,
    `- **Actions:** ${actions.join(', ') || 'none'}${outcomes ? ` (${mdText(outcomes)})` : ''}`,
    `- **By hand:** ${manual.join(', ') || 'nothing'}`,
  ];
}

function beforeAfterTable(r: IncidentReport): string[] {
  const { before, after, peak } = r.summary;
  if (!before) return ['No utilization was measured.'];
  const cols = after ? [before, after] : [before];
  const head = [
    'Metric',
    `Before (${clock(before.ts)}, ${mdText(before.label)})`,
    ...(after ? [`After (${clock(after.ts)}, ${mdText(after.label)})`] : []),
  ];
  const rows = HEADLINE.filter(({ key }) => cols.some((m) => m.metrics[key] !== undefined)).map(
    ({ key, label }) => {
      const cells = cols.map((m) => {
        const v = metricValue(key, m.metrics);
        const usable = m.metrics.usable_connections;
        return key === 'connections' && usable !== undefined ? `${v} of ${usable}` : v;
      });
      return [label, ...cells];
    },
  );
  const lines = [mdTable(head, rows, after ? [1, 2] : [1])];
  const extra: string[] = [];
  if (peak && peak !== before && peak !== after)
    extra.push(
      `Peak: ${peak.metrics.utilization_percent}% at ${clock(peak.ts)} (${mdText(peak.label)}).`,
    );
  const t = thresholdsLine(r.summary.thresholds);
  if (t) extra.push(t);
  if (extra.length) lines.push('', extra.join(' '));
  return lines;
}

/** `Thresholds: warning 90%, critical 95%.` — the runs' `--set`, else the runbook's defaults. */
export function thresholdsLine(t: { warning?: number; critical?: number }): string {
  const parts = [
    t.warning === undefined ? '' : `warning ${t.warning}%`,
    t.critical === undefined ? '' : `critical ${t.critical}%`,
  ].filter(Boolean);
  return parts.length ? `Thresholds: ${parts.join(', ')}.` : '';
}

function evidence(e: StepEvidence): string[] {
  const meta = [
    e.phase ?? e.command,
    clock(e.ts),
    e.status,
    plural(e.rowCount, 'row'),
    ...(e.durationMs === undefined ? [] : [`${e.durationMs} ms`]),
  ].filter(Boolean);
  const out = [`### ${mdText(e.title)} (${mdText(e.step)})`, '', mdText(meta.join(' · ')), ''];
  if (e.status === 'failed') {
    out.push(`Failed: ${mdText(e.error)}`);
    return out;
  }
  if (e.rows.length === 0) {
    out.push('No rows.');
    return out;
  }
  out.push(rowsTable(e.rows.slice(0, EVIDENCE_ROWS)));
  const more = e.rowCount - Math.min(e.rows.length, EVIDENCE_ROWS);
  if (more > 0) out.push('', `… ${more} more`);
  return out;
}

function rowsTable(rows: Row[]): string {
  const layout = layoutRows(rows);
  return mdTable(
    layout.headers.map(mdText),
    layout.rows.map((r) =>
      r.map(({ column, value }) => (column === undefined ? mdText(value) : cell(column, value))),
    ),
    layout.numeric,
  );
}

function cell(column: string, value: unknown): string {
  if (value === null || value === undefined) return '';
  if (QUERY_COLUMNS.has(column.toLowerCase())) return mdCode(clip(String(value), QUERY_CHARS));
  return mdText(value);
}

function action(a: ActionReport): string[] {
  const title = `### ${mdText(a.id)}${a.mode ? `: ${mdText(a.mode)}` : ''} (${mdText(a.command)}, ${clock(a.ts)})`;
  const out = [title, ''];
  if (a.commands) {
    for (const c of a.commands)
      out.push(
        `- **${mdText(c.status)}:** ${mdCode(c.command.join(' '))}${c.detail ? ` — ${mdText(c.detail)}` : ''}`,
      );
    if (a.setting)
      out.push(
        `- **Setting:** ${mdText(a.setting.name)} ${mdText(a.setting.current)} → ${mdText(a.setting.after ?? a.setting.next)}`,
      );
  } else {
    out.push(
      `- **Selected:** ${plural(a.victims.length, 'session')}${a.spared.length ? `; ${a.spared.length} spared` : ''}`,
    );
  }
  if (a.prompt)
    out.push(
      `- **Asked:** "${mdText(a.prompt.question)}" → ${mdText(a.prompt.answer)} (answered by ${mdText(a.prompt.answeredBy)})`,
    );
  if (a.executed) {
    out.push(`- **Outcome:** ${mdText(outcomesLine(a.outcomes)) || 'no results recorded'}`);
    if (a.stoppedEarly) out.push('- **Stopped early:** interrupted before every batch ran');
    if (a.interrupted) out.push(`- **Interrupted:** ${INTERRUPTED_NOTE}`);
  } else {
    const why =
      a.victims.length === 0 && !a.dryRun && !a.declined
        ? a.kind === 'change'
          ? 'nothing to change'
          : 'no session matched'
        : a.dryRun
          ? '--dry-run'
          : a.declined
            ? 'declined'
            : 'not approved';
    out.push(`- **Not executed:** ${why}`);
  }
  if (a.capacity) out.push(`- **Capacity:** ${mdText(capacityVerdict(a.capacity))}`);
  if (a.before && a.after)
    out.push(`- **Before → after:** ${mdText(beforeAfterLine(a.before, a.after))}`);
  if (a.victims.length) {
    const byApp = new Map<string, number>();
    for (const v of a.victims) byApp.set(v.application, (byApp.get(v.application) ?? 0) + 1);
    const apps = [...byApp].map(([app, n]) => `${mdText(app || '(none)')} ${n}`).join(', ');
    out.push(`- **By application:** ${apps}`, '');
  }
  const tables = actionTables(a, mdText, mdCode);
  if (tables.victims.length) {
    out.push(mdTable(VICTIM_HEADERS, tables.victims, [0, 5]));
    if (tables.moreVictims)
      out.push('', `… ${tables.moreVictims} more (every one is in the JSON export)`);
  }
  if (tables.spared.length)
    out.push('', 'Spared:', '', mdTable(SPARED_HEADERS, tables.spared, [0]));
  return out;
}
