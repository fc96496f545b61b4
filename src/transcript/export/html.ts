/**
 * One self-contained HTML page with the Markdown export's sections and the utilization chart:
 * inline CSS, inline SVG, no script, and a Content-Security-Policy that forbids loading anything,
 * so even a string that escaped escaping could not run or phone home. Every string from the
 * transcript goes through `html()`.
 */
import { trendCharts, utilizationChart } from './chart.js';
import {
  HEADLINE,
  SPARED_HEADERS,
  QUERY_CHARS,
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
import { QUERY_COLUMNS, html } from './escape.js';
import { EVIDENCE_ROWS, thresholdsLine, type ExportContext } from './markdown.js';
import {
  layoutRows,
  type ActionReport,
  type IncidentReport,
  type Row,
  type StepEvidence,
} from './model.js';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.muted{color:#59636e}.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem .7rem}.sev-critical{color:#cf222e;font-weight:600}.sev-warning{color:#9a6700;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}.note{white-space:pre-wrap}
.chart{width:100%;max-width:760px;height:auto}`;

function table(head: string[], rows: string[][], numeric: number[] = []): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const tr = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

const code = (v: unknown) => (v === '' || v == null ? '' : `<code>${html(v)}</code>`);

export function toHtml(r: IncidentReport, ctx: ExportContext = {}): string {
  const s = r.summary;
  const title = `Incident ${s.incident}: ${span(s.started, s.ended)}`;
  const body: string[] = [`<h1>${html(title)}</h1>`];
  for (const w of s.warnings) body.push(`<p class="warn"><strong>Warning:</strong> ${html(w)}</p>`);

  body.push('<h2>Summary</h2>', summary(r), beforeAfter(r), utilizationChart(r));

  const multiDay = s.started?.slice(0, 10) !== s.ended?.slice(0, 10);
  body.push(
    '<h2>Timeline</h2>',
    table(
      ['Time (UTC)', 'Elapsed', 'Event', 'What happened'],
      r.timeline.map((t) => [
        html(multiDay ? dateTime(t.ts) : clock(t.ts)),
        elapsedLabel(t.elapsedMs),
        html(t.event),
        (t.severity
          ? `<span class="sev-${html(t.severity)}">${html(t.text)}</span>`
          : html(t.text)) + (t.code ? ` ${code(t.code)}` : ''),
      ]),
      [1],
    ),
  );

  body.push('<h2>Evidence</h2>');
  const shown = r.evidence.filter((e) => e.status !== 'skipped');
  if (shown.length === 0) body.push('<p>No step returned a result.</p>');
  for (const e of shown) body.push(evidence(e, r));

  body.push('<h2>Actions</h2>');
  if (r.actions.length === 0) body.push('<p>No action was taken.</p>');
  for (const a of r.actions) body.push(action(a));

  body.push('<h2>Findings</h2>');
  body.push(
    r.findings.length === 0
      ? '<p>No findings.</p>'
      : table(
          ['Time (UTC)', 'Severity', 'Finding', 'Message', 'Sessions', 'Suggests'],
          r.findings.map((f) => [
            clock(f.ts),
            `<span class="sev-${html(f.severity)}">${html(f.severity)}</span>`,
            html(f.id),
            html(f.message),
            f.count === undefined ? '' : String(f.count),
            html(f.suggest.join(', ')),
          ]),
          [4],
        ),
  );

  body.push('<h2>To do by hand</h2>');
  body.push(
    r.manual.length === 0
      ? '<p>Nothing.</p>'
      : table(
          ['Status', 'Step', 'Command', 'Notes'],
          r.manual.map((m) => [
            html(m.status),
            `${html(m.title)} (${html(m.step)})`,
            code(m.command),
            m.notes.map((n) => `<div class="note">${html(n, { multiline: true })}</div>`).join(''),
          ]),
        ),
  );

  body.push('<h2>Operator notes</h2>');
  body.push(
    r.notes.length === 0
      ? '<p>None recorded.</p>'
      : `<ul>${r.notes
          .map(
            (n) =>
              `<li>${clock(n.ts)}${n.step ? ` (on ${html(n.step)})` : ''}: <span class="note">${html(n.text, { multiline: true })}</span></li>`,
          )
          .join('\n')}</ul>`,
  );
  const from = ctx.source ? ` from ${code(ctx.source)}` : '';
  body.push(
    `<hr><p class="muted">Exported by poolctl${ctx.poolctl ? ` ${html(ctx.poolctl)}` : ''}${from}.</p>`,
  );

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}

function summary(r: IncidentReport): string {
  const s = r.summary;
  const runs = s.runs
    .map(
      (run) =>
        `${html(run.command)}${run.mode ? ` (${html(run.mode)})` : ''} → ${
          run.status === undefined
            ? 'no end recorded'
            : `${html(run.status)}, exit ${run.exitCode ?? '?'}`
        }`,
    )
    .join('; ');
  const f = s.findings;
  const items: [string, string][] = [
    [
      `Target${s.targets.length === 1 ? '' : 's'}`,
      s.targets.map(code).join(', ') || 'none recorded',
    ],
    [
      `Runbook${s.runbooks.length === 1 ? '' : 's'}`,
      html(s.runbooks.join(', ')) || 'none recorded',
    ],
    ['Runs', runs || 'none recorded'],
    ['Final status', `${html(s.status)}, exit code ${s.exitCode ?? 'none'}`],
    ['Run by', html(s.operators.join(', ')) || 'not recorded in the transcript'],
    ['Duration', `${duration(s.durationMs)} (${plural(s.events, 'event')})`],
    ['Findings', `${f.critical} critical, ${f.warning} warning, ${f.info} info`],
    [
      'Actions',
      `${s.actions.executed} executed, ${s.actions.declined} declined, ${s.actions.dryRun} dry run` +
        (outcomesLine(s.actions.outcomes) ? ` (${html(outcomesLine(s.actions.outcomes))})` : ''),
    ],
    [
      'By hand',
      html(
        Object.entries(s.manual)
          .map(([k, n]) => `${n} ${k}`)
          .join(', '),
      ) || 'nothing',
    ],
  ];
  return `<dl>${items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function beforeAfter(r: IncidentReport): string {
  const { before, after, peak } = r.summary;
  if (!before) return '<p>No utilization was measured.</p>';
  const cols = after ? [before, after] : [before];
  const head = [
    'Metric',
    `Before (${clock(before.ts)}, ${html(before.label)})`,
    ...(after ? [`After (${clock(after.ts)}, ${html(after.label)})`] : []),
  ];
  const rows = HEADLINE.filter(({ key }) => cols.some((m) => m.metrics[key] !== undefined)).map(
    ({ key, label }) => [
      label,
      ...cols.map((m) => {
        const usable = m.metrics.usable_connections;
        const v = metricValue(key, m.metrics);
        return key === 'connections' && usable !== undefined ? `${v} of ${usable}` : v;
      }),
    ],
  );
  const out = table(head, rows, after ? [1, 2] : [1]);
  const extra: string[] = [];
  if (peak && peak !== before && peak !== after)
    extra.push(
      `Peak: ${peak.metrics.utilization_percent}% at ${clock(peak.ts)} (${html(peak.label)}).`,
    );
  const t = thresholdsLine(r.summary.thresholds);
  if (t) extra.push(t);
  return extra.length ? `${out}<p>${extra.join(' ')}</p>` : out;
}

function evidence(e: StepEvidence, r: IncidentReport): string {
  const meta = [e.phase ?? e.command, clock(e.ts), e.status, plural(e.rowCount, 'row')];
  if (e.durationMs !== undefined) meta.push(`${e.durationMs} ms`);
  const out = [
    `<h3>${html(e.title)} (${html(e.step)})</h3>`,
    `<p class="muted">${html(meta.filter(Boolean).join(' · '))}</p>`,
  ];
  if (e.status === 'failed') out.push(`<p>Failed: ${html(e.error)}</p>`);
  else if (e.rows.length === 0) out.push('<p>No rows.</p>');
  else {
    out.push(rowsTable(e.rows.slice(0, EVIDENCE_ROWS)));
    const more = e.rowCount - Math.min(e.rows.length, EVIDENCE_ROWS);
    if (more > 0) out.push(`<p>… ${more} more</p>`);
    const trends = trendCharts(e, r);
    if (trends) out.push(trends);
  }
  return out.join('\n');
}

function rowsTable(rows: Row[]): string {
  const layout = layoutRows(rows);
  const cell = ({ column, value }: { column?: string; value: unknown }) =>
    value === null || value === undefined
      ? ''
      : column !== undefined && QUERY_COLUMNS.has(column.toLowerCase())
        ? // As in the Markdown: a 1 MB query is evidence enough in its first lines.
          code(clip(String(value), QUERY_CHARS))
        : html(value);
  return table(
    layout.headers.map((c) => html(c)),
    layout.rows.map((r) => r.map(cell)),
    layout.numeric,
  );
}

function action(a: ActionReport): string {
  const out = [
    `<h3>${html(a.id)}${a.mode ? `: ${html(a.mode)}` : ''} (${html(a.command)}, ${clock(a.ts)})</h3>`,
  ];
  const items = a.commands
    ? a.commands.map(
        (c) =>
          `<li><strong>${html(c.status)}:</strong> ${code(c.command.join(' '))}${c.detail ? ` — ${html(c.detail)}` : ''}</li>`,
      )
    : [
        `<li><strong>Selected:</strong> ${plural(a.victims.length, 'session')}${a.spared.length ? `; ${a.spared.length} spared` : ''}</li>`,
      ];
  if (a.setting)
    items.push(
      `<li><strong>Setting:</strong> ${html(a.setting.name)} ${html(a.setting.current)} → ${html(a.setting.after ?? a.setting.next)}</li>`,
    );
  if (a.prompt)
    items.push(
      `<li><strong>Asked:</strong> “${html(a.prompt.question)}” → ${html(a.prompt.answer)} (answered by ${html(a.prompt.answeredBy)})</li>`,
    );
  if (a.executed) {
    items.push(
      `<li><strong>Outcome:</strong> ${html(outcomesLine(a.outcomes)) || 'no results recorded'}</li>`,
    );
    if (a.stoppedEarly)
      items.push('<li><strong>Stopped early:</strong> interrupted before every batch ran</li>');
    if (a.interrupted)
      items.push(`<li><strong>Interrupted:</strong> ${html(INTERRUPTED_NOTE)}</li>`);
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
    items.push(`<li><strong>Not executed:</strong> ${why}</li>`);
  }
  if (a.capacity)
    items.push(`<li><strong>Capacity:</strong> ${html(capacityVerdict(a.capacity))}</li>`);
  if (a.before && a.after)
    items.push(
      `<li><strong>Before → after:</strong> ${html(beforeAfterLine(a.before, a.after))}</li>`,
    );
  out.push(`<ul>${items.join('')}</ul>`);
  const tables = actionTables(a, html, code);
  if (tables.victims.length) {
    out.push(table(VICTIM_HEADERS, tables.victims, [0, 5]));
    if (tables.moreVictims)
      out.push(`<p>… ${tables.moreVictims} more (every one is in the JSON export)</p>`);
  }
  if (tables.spared.length) out.push('<p>Spared:</p>', table(SPARED_HEADERS, tables.spared, [0]));
  return out.join('\n');
}
