/**
 * Escaping for the exports. Query text, application names and user names come from the server,
 * and `pg_stat_activity.query` is whatever a client sent: in an export it must stay text — no
 * HTML, no links, no table breaks — however it was crafted. Everything is sanitized again here
 * (the writer did it too, but a transcript is a file anyone could have edited).
 */
import { sanitizeForDisplay, sanitizeInline } from '../../io/sanitize.js';

function asText(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * Markdown text on one line (a table cell, a list item). `&`, `<`, `>` become entities, so no
 * HTML survives; `\`, backticks, `|`, `*`, `~`, `[`, `]` are backslash-escaped, so no code
 * span, table break, emphasis or link can start; a leading block marker (`# `, `- `, `+ `,
 * `1. `, `---`) is escaped so the text cannot become a heading, a list or a rule.
 */
export function mdText(v: unknown): string {
  return sanitizeInline(asText(v))
    .replace(/[\\`|*~[\]]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/^(\s*)([#+-])(?=\s|$)/, '$1\\$2')
    .replace(/^(\s*)([-_=])(?=[-_=\s]*$)/, '$1\\$2')
    .replace(/^(\s*\d{1,9})([.)])(?=\s|$)/, '$1\\$2');
}

/**
 * A Markdown code span: its content is never interpreted (no HTML, no links). The fence is one
 * backtick longer than the longest run inside. In a table cell `|` still ends the cell, even
 * in a code span, so it is escaped there (GFM removes the backslash before the span is parsed).
 */
export function mdCode(v: unknown, opts: { inTable?: boolean } = {}): string {
  let s = sanitizeInline(asText(v));
  if (s === '') return '';
  if (opts.inTable !== false) s = s.replace(/\|/g, '\\|');
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = s.startsWith('`') || s.endsWith('`') || /^ .* $/.test(s) ? ' ' : '';
  return `${fence}${pad}${s}${pad}${fence}`;
}

/** Columns whose values are statement text: shown as code, literally. */
export const QUERY_COLUMNS = new Set([
  'query',
  'last_query',
  'current_query',
  'query_text',
  'sql_text',
  'info',
  'statement',
]);

/** A GFM table; cells must already be escaped. `right` aligns those columns right (numbers). */
export function mdTable(head: string[], rows: string[][], right: number[] = []): string {
  const sep = head.map((_, i) => (right.includes(i) ? '---:' : '---'));
  const line = (cells: string[]) => `| ${cells.map((c) => c || ' ').join(' | ')} |`;
  return [line(head), line(sep), ...rows.map(line)].join('\n');
}

/** HTML text: sanitized, then `& < > " '` as entities. Safe in element content and attributes. */
export function html(v: unknown, opts: { multiline?: boolean } = {}): string {
  const text = opts.multiline ? sanitizeForDisplay(asText(v)) : sanitizeInline(asText(v));
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
