import { describe, expect, it } from 'vitest';
import { sanitizeForDisplay, sanitizeInline, sanitizeValue } from '../../src/io/sanitize.js';

// Everything that must never reach a terminal or a Markdown file.
const UNSAFE =
  // eslint-disable-next-line no-control-regex -- the test is about control characters
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;

describe('sanitizeForDisplay', () => {
  it.each([
    ['colours', 'a\x1b[31mred\x1b[0m b', 'ared b'],
    ['cursor movement and clear screen', 'x\x1b[2J\x1b[1;1Hy', 'xy'],
    [
      'an OSC 8 hyperlink keeps its text, not its target',
      '\x1b]8;;https://evil.example\x07click\x1b]8;;\x07',
      'click',
    ],
    ['an OSC window title ended by ST', '\x1b]0;pwned\x1b\\ok', 'ok'],
    ['the 8-bit CSI (C1)', 'a\u009b31mb', 'ab'],
    ['other C1 controls', 'a\u0085b\u009dc', 'abc'],
    ['BEL, NUL, backspace and DEL', 'a\x07b\x00c\x08d\x7fe', 'abcde'],
    ['a lone ESC', 'a\x1bb', 'ab'],
    ['bidi overrides and isolates', 'admin\u202e\u2066txt.exe\u2069\u200f', 'admintxt.exe'],
    ['a carriage return that would overwrite the line', 'rm -rf /\rSELECT 1', 'rm -rf /\nSELECT 1'],
    ['CRLF', 'a\r\nb', 'a\nb'],
  ])('removes %s', (_name, input, expected) => {
    expect(sanitizeForDisplay(input)).toBe(expected);
  });

  it('keeps tabs, newlines and ordinary Unicode', () => {
    const text = "SELECT *\n\tFROM t WHERE name = 'Zoë 東京 🚀' AND state = 'idle'";
    expect(sanitizeForDisplay(text)).toBe(text);
  });

  it('leaves nothing unsafe in random input', () => {
    let seed = 42;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const alphabet = [
      '\x1b',
      '[',
      ']',
      '\x07',
      '\\',
      '\u009b',
      '\u009d',
      '\u202e',
      '\r',
      'a',
      '1',
      ';',
      'm',
      '8',
      'P',
    ];
    for (let i = 0; i < 2000; i++) {
      let s = '';
      for (let j = 0; j < 30; j++) s += alphabet[rand(alphabet.length)];
      const out = sanitizeForDisplay(s);
      expect(out, JSON.stringify(s)).not.toMatch(UNSAFE);
      expect(out).not.toContain('\r');
    }
  });
});

describe('sanitizeInline', () => {
  it('turns line breaks and tabs into spaces, after removing escapes', () => {
    expect(sanitizeInline('SELECT 1\n\tFROM t\r\nWHERE\x1b[1m x')).toBe('SELECT 1  FROM t WHERE x');
  });

  it('leaves a single line unchanged', () => {
    expect(sanitizeInline("state = 'idle in transaction'")).toBe("state = 'idle in transaction'");
  });
});

describe('sanitizeValue', () => {
  it('sanitizes strings in nested rows, objects and keys, and keeps other values', () => {
    const when = new Date('2026-11-22T03:15:02Z');
    const input = {
      rows: [
        { pid: 42, application: 'app\x1b]8;;http://x\x07', query: 'SELECT\n1\x07', at: when },
        { pid: 43, application: null, ok: true },
      ],
      ['col\x1b[31m']: 'v',
    };
    const out = sanitizeValue(input);
    expect(out).toEqual({
      rows: [
        { pid: 42, application: 'app', query: 'SELECT\n1', at: when },
        { pid: 43, application: null, ok: true },
      ],
      col: 'v',
    });
    expect(out.rows[0]?.at).toBe(when);
    // The input is not modified.
    expect(input.rows[0]?.query).toBe('SELECT\n1\x07');
  });

  it('handles plain strings and primitives', () => {
    expect(sanitizeValue('a\x1b[0mb')).toBe('ab');
    expect(sanitizeValue(7)).toBe(7);
    expect(sanitizeValue(undefined)).toBeUndefined();
  });
});
