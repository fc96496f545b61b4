/**
 * Plain-text wording shared by every export: one line per event for the timeline, and the way
 * numbers, times and metrics read. Server text is sanitized here (control characters, line
 * breaks) but not escaped: each format escapes for itself.
 */
import { sanitizeInline } from '../../io/sanitize.js';
import { formatDuration } from '../../runbook/params.js';
import type { ActionEvent, RecordedEvent } from '../types.js';
import type { ActionReport } from './model.js';

type Metrics = Record<string, number>;

/** The headline numbers, in the order a postmortem reads them. */
export const HEADLINE: { key: string; label: string }[] = [
  { key: 'utilization_percent', label: 'utilization' },
  { key: 'connections', label: 'connections' },
  { key: 'idle', label: 'idle' },
  { key: 'idle_in_transaction', label: 'idle in transaction' },
  { key: 'active', label: 'active' },
];

export function clean(v: unknown): string {
  if (v === null || v === undefined) return '';
  return sanitizeInline(typeof v === 'object' ? JSON.stringify(v) : String(v));
}

/** Text cut to `max` characters with an ellipsis. */
export function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, Math.max(1, max - 1))}…` : s;
}

export const plural = (n: number, word: string, many = `${word}s`) =>
  `${n} ${n === 1 ? word : many}`;

/** `2026-11-22T03:15:02.123Z` → `03:15:02`. */
export function clock(ts: string | undefined): string {
  return ts && /T\d\d:\d\d:\d\d/.test(ts) ? ts.slice(11, 19) : (ts ?? '');
}

/** `2026-11-22T03:15:02.123Z` → `2026-11-22 03:15:02`. */
export function dateTime(ts: string | undefined): string {
  return ts && /T\d\d:\d\d:\d\d/.test(ts) ? `${ts.slice(0, 10)} ${ts.slice(11, 19)}` : (ts ?? '');
}

/** The incident's time span: `2026-11-22 03:15:02 → 03:41:10 UTC` (the date again if it changed). */
export function span(started: string | undefined, ended: string | undefined): string {
  if (!started) return 'no events';
  const end = ended && ended.slice(0, 10) !== started.slice(0, 10) ? dateTime(ended) : clock(ended);
  return `${dateTime(started)} → ${end || '?'} UTC`;
}

/** Elapsed time as `+MM:SS`, `+H:MM:SS` from an hour on. */
export function elapsedLabel(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `+${h}:${mm}:${ss}` : `+${mm}:${ss}`;
}

/** A duration for humans: `850 ms`, `42 s`, `26 min 8 s`, `2 h 5 min`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** One metric's value as it reads: `88.2%` for percents, the number otherwise. */
export function metricValue(key: string, m: Metrics | undefined): string {
  const v = m?.[key];
  if (v === undefined) return '–';
  return key.endsWith('_percent') ? `${v}%` : String(v);
}

/** `utilization 88.2% (15 of 17 usable) · idle 12 · idle in transaction 2 · active 1` */
export function metricsLine(m: Metrics): string {
  const parts: string[] = [];
  for (const { key, label } of HEADLINE) {
    if (m[key] === undefined || key === 'connections') continue;
    let part = `${label} ${metricValue(key, m)}`;
    if (key === 'utilization_percent' && m.connections !== undefined) {
      part +=
        m.usable_connections !== undefined
          ? ` (${m.connections} of ${m.usable_connections} usable)`
          : ` (${m.connections} connections)`;
    }
    parts.push(part);
  }
  if (m.utilization_percent === undefined && m.connections !== undefined)
    parts.unshift(`connections ${m.connections}`);
  return parts.join(' · ');
}

/** `utilization 88.2% → 17.6% · connections 15 → 3 · idle 12 → 0 …`, the keys both sides have. */
export function beforeAfterLine(before: Metrics, after: Metrics): string {
  return HEADLINE.filter(({ key }) => before[key] !== undefined && after[key] !== undefined)
    .map(({ key, label }) => `${label} ${metricValue(key, before)} → ${metricValue(key, after)}`)
    .join(' · ');
}

/** `terminated 12, spared 1` from per-outcome counts. */
export function outcomesLine(outcomes: Record<string, number>): string {
  return Object.entries(outcomes)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

export interface EventLine {
  event: string;
  text: string;
  /** A command that follows the text, shown as code where the format has it. */
  code?: string;
  severity?: string;
}

/** One timeline line for an event; `step.start` has none (its result says it all). */
export function describeEvent(
  e: RecordedEvent,
  ctx: { titles: Map<string, string>; command: string },
): EventLine | undefined {
  const title = (id: string) => clean(ctx.titles.get(id) ?? id);
  switch (e.type) {
    case 'session.start': {
      const parts = [`${clean(e.command)} started`];
      if (e.runbook) parts.push(`runbook ${clean(e.runbook)}`);
      const targets = e.targets.map(clean).join(', ');
      if (targets) parts.push(targets);
      if (e.mode) parts.push(clean(e.mode));
      const sets = Object.entries(e.parameters).map(([k, v]) => `--set ${clean(k)}=${clean(v)}`);
      if (sets.length) parts.push(sets.join(' '));
      return { event: 'start', text: parts.join(' · ') };
    }
    case 'session.end':
      return {
        event: 'end',
        text: `${clean(ctx.command) || 'run'} ended: ${clean(e.status)}, exit ${e.exitCode ?? 'unknown'}`,
      };
    case 'step.start':
      return undefined;
    case 'step.result': {
      const step = clean(e.step);
      let detail: string = e.status;
      if (e.status === 'ok') {
        detail = `ok, ${plural(e.rowCount ?? 0, 'row')}`;
        if (e.durationMs) detail += `, ${e.durationMs} ms`;
      } else if (e.status === 'failed') detail = `failed: ${clean(e.error)}`;
      return { event: 'step', text: `${title(e.step)} (${step}): ${clean(detail)}` };
    }
    case 'metrics':
      return {
        event: 'metrics',
        text: `${clean(e.label) || 'measured'}: ${metricsLine(e.metrics)}`,
      };
    case 'finding': {
      const severity = clean(e.severity) || 'info';
      return {
        event: 'finding',
        text: `${severity.toUpperCase()} ${clean(e.id)}: ${clean(e.message)}`,
        severity,
      };
    }
    case 'prompt':
      return {
        event: 'prompt',
        text: `"${clean(e.question)}" → ${clean(e.answer)} (answered by ${clean(e.answeredBy) || '?'})`,
      };
    case 'intent': {
      const n = e.victims.length;
      const verb = e.mode === 'cancel' ? 'cancel the queries of' : 'terminate';
      return {
        event: 'intent',
        text: `${clean(e.step)}: about to ${verb} ${n} session${n === 1 ? '' : 's'}${e.escalation === true ? ' (escalation)' : ''} (approved by ${clean(e.approvedBy) || '?'})`,
      };
    }
    case 'outcome': {
      const counts: Record<string, number> = {};
      for (const r of e.results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
      return { event: 'outcome', text: `${clean(e.step)}: ${outcomesLine(counts)}` };
    }
    case 'change.intent': {
      const what = e.setting
        ? `change ${clean(e.setting.name)} from ${clean(e.setting.current)} to ${clean(e.setting.next)}`
        : `run ${(e.commands ?? []).map((c) => clean(c.join(' '))).join('; ')}`;
      return {
        event: 'intent',
        text: `${clean(e.step)}: about to ${what} (approved by ${clean(e.approvedBy) || '?'})`,
      };
    }
    case 'change.outcome':
      return {
        event: 'outcome',
        text: `${clean(e.step)}: ${clean(e.status)}${e.detail ? `: ${clean(e.detail)}` : ''}`,
        code: clean(e.command.join(' ')),
      };
    case 'action':
      return { event: 'action', text: actionLine(e) };
    case 'manual':
      return {
        event: 'by hand',
        text: `${title(e.step)} (${clean(e.status) || 'pending'}):`,
        code: clean(e.command),
      };
    case 'note':
      return { event: 'note', text: `${e.step ? `on ${clean(e.step)}: ` : ''}${clean(e.text)}` };
    case 'unknown':
      // Written by a newer poolctl: shown, not dropped, and not guessed at.
      return {
        event: clean(e.recordedType) || 'unknown',
        text: `unknown event: ${clip(clean(e.fields), 200)}`,
      };
  }
}

function actionLine(e: ActionEvent): string {
  const id = clean(e.id);
  const mode = e.mode ? ` (${clean(e.mode)})` : '';
  const victims = e.victims.length;
  const spared = e.spared.length;
  const sparedText = spared ? `; ${spared} spared` : '';
  if (!e.executed) {
    const why =
      victims === 0 && !e.dryRun && !e.declined
        ? e.kind === 'change'
          ? 'nothing to change'
          : 'no session matched'
        : e.dryRun
          ? `dry run, would act on ${victims}`
          : e.declined
            ? `declined, would act on ${victims}`
            : `not approved, would act on ${victims}`;
    return `${id}${mode}: not executed (${why})${sparedText}`;
  }
  let line = `${id}${mode}: ${outcomesLine(e.outcomes) || 'no results'} of ${victims}${sparedText}`;
  const b = e.before;
  const a = e.after;
  if (b?.utilization_percent !== undefined && a?.utilization_percent !== undefined) {
    line += ` · utilization ${b.utilization_percent}% → ${a.utilization_percent}%`;
  }
  if (e.settle && e.settle.afterS > 0) {
    line += ` · measured ${formatDuration(e.settle.afterS)} after`;
    if (e.settle.newConnections) line += `, ${e.settle.newConnections} new connections by then`;
  }
  if (e.stoppedEarly) line += ' · stopped early (interrupted)';
  return line;
}

/** Said of an action whose run ended after its intent, before its own event. */
export const INTERRUPTED_NOTE =
  'the run ended before this action finished; a session without a recorded outcome shows "outcome unknown: the run was interrupted"';

/** Victims shown per action; every one is in the JSON export. */
export const VICTIM_ROWS = 50;
/** Characters of query text in a table cell. */
export const QUERY_CHARS = 300;

export const VICTIM_HEADERS = [
  'pid',
  'user',
  'application',
  'client',
  'state',
  'in state (s)',
  'outcome',
  'reason',
  'query',
];
export const SPARED_HEADERS = ['pid', 'user', 'application', 'reason'];

/** The victim and spared tables' cells, escaped for one format: `text` for prose, `code` for SQL. */
export function actionTables(
  a: ActionReport,
  text: (s: string) => string,
  code: (s: string) => string,
): { victims: string[][]; spared: string[][]; moreVictims: number } {
  return {
    victims: a.victims
      .slice(0, VICTIM_ROWS)
      .map((v) => [
        String(v.pid),
        text(v.user),
        text(v.application),
        text(v.client),
        text(v.state),
        v.inStateS === undefined ? '' : String(v.inStateS),
        text(v.outcome),
        text(v.reason),
        code(clip(v.query, QUERY_CHARS)),
      ]),
    spared: a.spared.map((s) => [String(s.pid), text(s.user), text(s.application), text(s.reason)]),
    moreVictims: Math.max(0, a.victims.length - VICTIM_ROWS),
  };
}
