import { stripVTControlCharacters } from 'node:util';

// C0 controls except \t and \n, DEL, C1 controls (U+0080–U+009F, which include the 8-bit CSI and
// OSC introducers), and the bidi marks, embeddings, overrides and isolates ("Trojan Source").
const UNSAFE =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point here
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
// A lone \r moves the cursor back over what was printed, so it becomes a line break.
const LINE_BREAK = /\r\n?|[\u2028\u2029]/g;
// Anything either step above would change; most server text has none, and 1,000 rows of it are
// sanitized on every diagnose.
const NEEDS_WORK =
  // eslint-disable-next-line no-control-regex -- as above
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]/;

/**
 * Makes server-supplied text (query text, application_name, user names, kubectl output) safe to
 * print or to put in Markdown: escape sequences (colours, OSC 8 hyperlinks, titles) are removed,
 * then every remaining control and bidi character. Tabs and line breaks survive, as `\t` and `\n`.
 */
export function sanitizeForDisplay(text: string): string {
  if (!NEEDS_WORK.test(text)) return text;
  return stripVTControlCharacters(text).replace(LINE_BREAK, '\n').replace(UNSAFE, '');
}

/** Like `sanitizeForDisplay`, for one line (a table cell): tabs and line breaks become spaces. */
export function sanitizeInline(text: string): string {
  return sanitizeForDisplay(text).replace(/[\t\n]/g, ' ');
}

/**
 * Sanitizes every string inside rows, arrays and plain objects (keys included), with
 * `sanitizeForDisplay`. Other values (numbers, Dates, Buffers, …) are returned as they are.
 */
export function sanitizeValue<T>(v: T): T {
  return sanitizeAny(v) as T;
}

function sanitizeAny(v: unknown): unknown {
  if (typeof v === 'string') return sanitizeForDisplay(v);
  if (Array.isArray(v)) return v.map(sanitizeAny);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) out[sanitizeForDisplay(k)] = sanitizeAny(val);
    return out;
  }
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Sanitizes the string values of freshly fetched rows in place: no copy of 1,000 rows when, as
 * almost always, nothing needs changing.
 */
export function sanitizeRows<T extends Record<string, unknown>>(rows: T[]): T[] {
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      const value = row[key];
      if (typeof value === 'string') {
        if (NEEDS_WORK.test(value))
          (row as Record<string, unknown>)[key] = sanitizeForDisplay(value);
      } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
        (row as Record<string, unknown>)[key] = sanitizeValue(value);
      }
    }
  }
  return rows;
}
