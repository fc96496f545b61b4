import { Chalk, type ChalkInstance } from 'chalk';
import type { Severity } from '../runbook/types.js';
import { sanitizeInline } from './sanitize.js';

/** One colour decision, made once from the IO and passed along (chalk ignores NO_COLOR itself). */
export function makeStyle(color: boolean): ChalkInstance {
  return new Chalk({ level: color ? 1 : 0 });
}

export function severityLabel(style: ChalkInstance, severity: Severity): string {
  if (severity === 'critical') return style.red.bold('✖ CRITICAL');
  if (severity === 'warning') return style.yellow.bold('! WARNING ');
  return style.cyan('i info    ');
}

/** A cell as text: numbers plain, dates as ISO, arrays joined, control characters gone. */
export function cellText(value: unknown, maxWidth: number): string {
  let text: string;
  if (value === null || value === undefined) text = '';
  else if (value instanceof Date) text = value.toISOString();
  else if (Array.isArray(value)) text = value.join(',');
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  text = sanitizeInline(text).replace(/\s+/g, ' ').trim();
  return text.length > maxWidth ? `${text.slice(0, Math.max(1, maxWidth - 1))}…` : text;
}

export interface TableOptions {
  columns: string[];
  /** Box-drawn table (cli-table3) on a terminal; plain aligned columns otherwise. */
  boxed: boolean;
  style: ChalkInstance;
  /** Longest text in a cell; the `query` column gets this, the others a third of it. */
  maxCellWidth?: number;
}

const WIDE_COLUMNS = new Set(['query', 'last_query']);

export async function renderTable(
  rows: Record<string, unknown>[],
  opts: TableOptions,
): Promise<string> {
  const widest = opts.maxCellWidth ?? 60;
  const widthOf = (column: string) =>
    WIDE_COLUMNS.has(column) ? widest : Math.max(12, widest / 2);
  const body = rows.map((row) => opts.columns.map((c) => cellText(row[c], widthOf(c))));
  if (opts.boxed) {
    const { default: Table } = await import('cli-table3');
    const table = new Table({
      head: opts.columns.map((c) => opts.style.bold(c)),
      style: { head: [], border: [] },
      // No rule between rows: a 3 AM screen should show rows, not lines.
      chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    });
    table.push(...body);
    return table.toString();
  }
  return plainColumns([opts.columns, ...body]);
}

/** Aligned columns separated by two spaces, the way `gh` prints tables without a terminal. */
export function plainColumns(lines: string[][]): string {
  const widths: number[] = [];
  for (const line of lines)
    line.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return lines
    .map((line) =>
      line
        .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A single-row result shown as `name  value` lines, easier to read than one very wide row. */
export function renderRecord(row: Record<string, unknown>, style: ChalkInstance): string {
  const keys = Object.keys(row);
  const width = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => `${style.dim(k.padEnd(width))}  ${cellText(row[k], 80)}`).join('\n');
}

export function indent(text: string, spaces = 2): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => (line ? pad + line : line))
    .join('\n');
}

/** One decimal, always: "37.0%" beside "96.3%", not "37%". */
/**
 * Where this run's record is, or why there is none: a path is shown only while it holds the
 * record, so no one goes looking for a postmortem in a file that was never written.
 */
export function transcriptText(transcript: { path: string; unrecorded?: string }): string {
  return transcript.unrecorded === undefined
    ? transcript.path
    : `not recorded: ${transcript.unrecorded}`;
}

export function percent(value: number | undefined): string {
  return value === undefined ? '?%' : `${value.toFixed(1)}%`;
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
