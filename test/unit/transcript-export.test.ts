import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  parseTranscriptOptions,
  runTranscript,
  type TranscriptOptions,
} from '../../src/commands/transcript.js';
import { UsageError, exitCodeOf } from '../../src/errors.js';
import { makeStyle } from '../../src/io/render.js';
import { mdCode, mdText } from '../../src/transcript/export/escape.js';
import { buildIncident, toHtml, toJson, toMarkdown } from '../../src/transcript/export/index.js';
import { normalizeEvent } from '../../src/transcript/normalize.js';
import type { EventType, RecordedEvent } from '../../src/transcript/types.js';

// ---------------------------------------------------------------------------------------------
// The fixture: an interactive diagnose at 03:15 that terminated idle sessions and verified, then
// a non-interactive mitigate at 03:41 that needed --yes and was declined. One victim's query and
// application name are hostile.

const EVIL_QUERY =
  "SELECT 1 /* </td><script>alert(1)</script> | [x](javascript:alert(2)) */\nFROM `t` WHERE a = '|'";
const EVIL_APP = 'evil|app<img src=x onerror=alert(3)>';

const util = (connections: number, idle: number, pct: number) => ({
  connections,
  active: 4,
  idle,
  idle_in_transaction: 3,
  busy: 7,
  state_hidden: 0,
  max_connections: 100,
  superuser_reserved_connections: 3,
  reserved_connections: 0,
  usable_connections: 97,
  utilization_percent: pct,
  busy_percent: 7.2,
});

const idleRows = Array.from({ length: 25 }, (_, i) => ({
  pid: 4000 + i,
  user: 'app',
  application: i === 0 ? EVIL_APP : 'api',
  state: 'idle',
  idle_s: 900 - i,
  query: i === 0 ? EVIL_QUERY : 'SELECT 1',
}));

const victim = (pid: number, application: string, query: string) => ({
  pid,
  sessionToken: '***',
  queryToken: '***',
  user: 'app',
  application,
  client: '10.0.0.7',
  state: 'idle',
  inStateS: 900,
  query,
  superuser: false,
});

const at = (hms: string) => `2026-11-22T${hms}Z`;
/** One line as written, read back as the reader reads it. */
const ev = (type: EventType, ts: string, rest: Record<string, unknown> = {}) =>
  normalizeEvent({ type, ts: at(ts), incident: 'inc-fixture', ...rest });

const EVENTS: RecordedEvent[] = [
  ev('session.start', '03:15:02.000', {
    command: 'diagnose',
    argv: ['poolctl', 'diagnose'],
    runbook: 'postgres/pool-exhausted',
    targets: ['postgres://app@db:5432/app'],
    poolctl: '0.1.0',
    mode: 'interactive',
    parameters: { utilization_critical: '92' },
    operator: { user: 'alice', host: 'bastion-1' },
  }),
  ev('step.start', '03:15:02.100', {
    step: 'utilization',
    title: 'How full is the server',
    kind: 'query',
    phase: 'diagnose',
  }),
  ev('step.result', '03:15:02.120', {
    step: 'utilization',
    status: 'ok',
    durationMs: 20,
    rowCount: 1,
    rows: [util(94, 80, 96.9)],
  }),
  ev('metrics', '03:15:02.121', { label: 'diagnose', metrics: util(94, 80, 96.9) }),
  ev('finding', '03:15:02.122', {
    id: 'pool-critical',
    severity: 'critical',
    message: 'Connections at 96.9% of usable slots (94 of 97)',
    step: 'utilization',
    suggest: [],
    count: 1,
  }),
  ev('step.start', '03:15:02.200', {
    step: 'idle-leaks',
    title: 'Idle connections (leak suspects)',
    kind: 'query',
    phase: 'diagnose',
  }),
  ev('step.result', '03:15:02.230', {
    step: 'idle-leaks',
    status: 'ok',
    durationMs: 30,
    rowCount: 25,
    rows: idleRows,
  }),
  ev('finding', '03:15:02.231', {
    id: 'idle-leak',
    severity: 'warning',
    message: '25 sessions idle for more than 10m',
    step: 'idle-leaks',
    suggest: ['kill-idle'],
    count: 25,
  }),
  ev('step.start', '03:15:02.300', {
    step: 'app-pool-metrics',
    title: 'Application pool metrics',
    kind: 'manual',
    phase: 'diagnose',
  }),
  ev('manual', '03:15:40.000', {
    step: 'app-pool-metrics',
    command: "curl http://prometheus:9090/api/v1/query -d 'query=db_pool_connections_active'",
    status: 'done',
  }),
  ev('step.start', '03:15:41.000', {
    step: 'recent-changes',
    title: 'Recent deployments',
    kind: 'manual',
    phase: 'diagnose',
  }),
  ev('note', '03:15:55.000', { step: 'recent-changes', text: 'deploy 4711 went out at 03:02' }),
  ev('manual', '03:15:56.000', {
    step: 'recent-changes',
    command: 'kubectl rollout history deployment/api | head',
    status: 'skipped',
  }),
  ev('prompt', '03:16:10.000', {
    question: 'Which mitigation?',
    answer: 'kill-idle',
    answeredBy: 'operator',
  }),
  ev('prompt', '03:16:20.000', {
    question: 'Terminate idle connections: terminate these 3 sessions?',
    answer: 'yes',
    answeredBy: 'operator',
  }),
  ev('action', '03:16:21.000', {
    id: 'kill-idle',
    mode: 'terminate',
    executed: true,
    dryRun: false,
    victims: [
      victim(4000, EVIL_APP, EVIL_QUERY),
      victim(4001, 'api', 'SELECT 1'),
      victim(4002, 'worker', 'COMMIT'),
    ],
    results: [
      { pid: 4000, outcome: 'terminated' },
      { pid: 4001, outcome: 'terminated' },
      { pid: 4002, outcome: 'already-gone' },
    ],
    spared: [
      {
        pid: 4010,
        user: 'migrator',
        application: 'migrations',
        reason: 'protected application "migrations"',
      },
    ],
    outcomes: { terminated: 2, 'already-gone': 1 },
    before: util(94, 80, 96.9),
    after: util(40, 26, 41.2),
    stoppedEarly: false,
  }),
  ev('prompt', '03:16:25.000', {
    question: 'Verify the recovery now?',
    answer: 'yes',
    answeredBy: 'operator',
  }),
  ev('step.start', '03:16:25.100', {
    step: 'utilization',
    title: 'How full is the server',
    kind: 'query',
    phase: 'verify',
  }),
  ev('step.result', '03:16:25.120', {
    step: 'utilization',
    status: 'ok',
    durationMs: 20,
    rowCount: 1,
    rows: [util(38, 24, 39.2)],
  }),
  ev('metrics', '03:16:25.121', { label: 'verify', metrics: util(38, 24, 39.2) }),
  ev('prompt', '03:16:30.000', { question: 'Next?', answer: 'note', answeredBy: 'operator' }),
  ev('note', '03:16:40.000', { text: 'pool leak in checkout | see #4711\n# not a heading' }),
  ev('session.end', '03:16:41.000', { status: 'healthy', exitCode: 0 }),
  ev('session.start', '03:41:00.000', {
    command: 'mitigate',
    argv: ['poolctl', 'mitigate', '--action', 'kill-long'],
    runbook: 'postgres/pool-exhausted',
    targets: ['postgres://app@db:5432/app'],
    poolctl: '0.1.0',
    mode: 'non-interactive',
    parameters: {},
  }),
  ev('prompt', '03:41:01.000', {
    question: 'Terminate long queries: terminate these 1 session?',
    answer: 'no',
    answeredBy: 'non-interactive',
  }),
  ev('action', '03:41:01.500', {
    id: 'kill-long',
    executed: false,
    dryRun: false,
    declined: true,
    victims: [victim(4100, 'batch', 'SELECT pg_sleep(3600)')],
    results: [],
    spared: [],
    before: util(45, 28, 46.4),
  }),
  ev('session.end', '03:41:10.000', { status: 'healthy', exitCode: 5 }),
];

const DEFAULTS = () => ({ utilization_warning: '90', utilization_critical: '95' });
const report = () =>
  buildIncident(EVENTS, { incident: 'inc-fixture', defaults: DEFAULTS, warnings: [] });
const markdown = () => toMarkdown(report(), { poolctl: '0.1.0', source: '/x/inc-fixture.jsonl' });

/** The text of a Markdown table row with its code spans removed (CommonMark backtick matching). */
function withoutCodeSpans(line: string): string {
  let out = '';
  let i = 0;
  while (i < line.length) {
    if (line[i] === '\\') {
      out += line.slice(i, i + 2);
      i += 2;
      continue;
    }
    const run = /^`+/.exec(line.slice(i));
    if (!run) {
      out += line[i++];
      continue;
    }
    const close = line.indexOf(run[0], i + run[0].length);
    // A closing run of exactly the same length ends the span.
    let j = close;
    while (j >= 0 && (line[j - 1] === '`' || line[j + run[0].length] === '`'))
      j = line.indexOf(run[0], j + 1);
    if (j < 0) {
      out += run[0];
      i += run[0].length;
      continue;
    }
    out += '<CODE>';
    i = j + run[0].length;
  }
  return out;
}

/** Cells of a GFM table row, split on pipes that are not backslash-escaped. */
function cells(line: string): number {
  return line.replace(/\\./g, '').split('|').length - 2;
}

describe('Markdown export', () => {
  it('titles the incident with its id and time span', () => {
    expect(markdown().split('\n')[0]).toBe(
      '# Incident inc-fixture: 2026-11-22 03:15:02 → 03:41:10 UTC',
    );
  });

  it('summarises targets, runbook, runs, final status, exit code and who ran it', () => {
    const md = markdown();
    expect(md).toContain(
      [
        '- **Target:** `postgres://app@db:5432/app`',
        '- **Runbook:** postgres/pool-exhausted',
        '- **Runs:** diagnose (interactive) → healthy, exit 0; mitigate (non-interactive) → healthy, exit 5',
        '- **Final status:** healthy, exit code 5',
        '- **Run by:** alice@bastion-1',
        '- **Duration:** 26 min 8 s (27 events)',
        '- **Findings:** 1 critical, 1 warning',
        '- **Actions:** 1 executed, 1 declined (terminated 2, already-gone 1)',
        '- **By hand:** 1 done, 1 skipped',
      ].join('\n'),
    );
  });

  it('puts the first and last measurements side by side, with the peak and thresholds', () => {
    expect(markdown()).toContain(
      [
        '| Metric | Before (03:15:02, diagnose) | After (03:41:01, before kill-long) |',
        '| --- | ---: | ---: |',
        '| utilization | 96.9% | 46.4% |',
        '| connections | 94 of 97 | 45 of 97 |',
        '| idle | 80 | 28 |',
        '| idle in transaction | 3 | 3 |',
        '| active | 4 | 4 |',
        '',
        // --set utilization_critical=92 wins over the runbook default (95).
        'Thresholds: warning 90%, critical 92%.',
      ].join('\n'),
    );
  });

  it('has a timeline with UTC time, elapsed time and every kind of event', () => {
    const md = markdown();
    expect(md).toContain(
      '| Time (UTC) | Elapsed | Event | What happened |\n| --- | ---: | --- | --- |',
    );
    for (const row of [
      '| 03:15:02 | +00:00 | start | diagnose started · runbook postgres/pool-exhausted · postgres://app@db:5432/app · interactive · --set utilization_critical=92 |',
      '| 03:15:02 | +00:00 | step | How full is the server (utilization): ok, 1 row, 20 ms |',
      '| 03:15:02 | +00:00 | metrics | diagnose: utilization 96.9% (94 of 97 usable) · idle 80 · idle in transaction 3 · active 4 |',
      '| 03:15:02 | +00:00 | finding | CRITICAL pool-critical: Connections at 96.9% of usable slots (94 of 97) |',
      '| 03:15:56 | +00:54 | by hand | Recent deployments (skipped): `kubectl rollout history deployment/api \\| head` |',
      '| 03:16:20 | +01:18 | prompt | "Terminate idle connections: terminate these 3 sessions?" → yes (answered by operator) |',
      '| 03:16:21 | +01:19 | action | kill-idle (terminate): terminated 2, already-gone 1 of 3; 1 spared · utilization 96.9% → 41.2% |',
      '| 03:16:40 | +01:38 | note | pool leak in checkout \\| see #4711 # not a heading |',
      '| 03:41:01 | +25:59 | action | kill-long: not executed (declined, would act on 1) |',
      '| 03:41:10 | +26:08 | end | mitigate ended: healthy, exit 5 |',
    ])
      expect(md).toContain(row);
  });

  it('caps evidence tables at 20 rows and says how many more there are', () => {
    const md = markdown();
    expect(md).toContain(
      '### Idle connections (leak suspects) (idle-leaks)\n\ndiagnose · 03:15:02 · ok · 25 rows · 30 ms',
    );
    expect(md).toContain('| 4019 | app | api | idle | 881 | `SELECT 1` |\n\n… 5 more');
    expect(md).not.toContain('| 4020 |');
    // One wide row reads as column/value pairs.
    expect(md).toContain('| Column | Value |\n| --- | --- |\n| connections | 94 |');
  });

  it('lists each action: selection, answer, outcomes, before → after, victims and spared', () => {
    const md = markdown();
    expect(md).toContain(
      [
        '### kill-idle: terminate (diagnose, 03:16:21)',
        '',
        '- **Selected:** 3 sessions; 1 spared',
        '- **Asked:** "Terminate idle connections: terminate these 3 sessions?" → yes (answered by operator)',
        '- **Outcome:** terminated 2, already-gone 1',
        '- **Before → after:** utilization 96.9% → 41.2% · connections 94 → 40 · idle 80 → 26 · idle in transaction 3 → 3 · active 4 → 4',
        '- **By application:** evil\\|app&lt;img src=x onerror=alert(3)&gt; 1, api 1, worker 1',
        '',
        '| pid | user | application | client | state | in state (s) | outcome | reason | query |',
      ].join('\n'),
    );
    expect(md).toContain(
      '| 4001 | app | api | 10.0.0.7 | idle | 900 | terminated |   | `SELECT 1` |',
    );
    expect(md).toContain(
      '| 4002 | app | worker | 10.0.0.7 | idle | 900 | already-gone |   | `COMMIT` |',
    );
    expect(md).toContain(
      'Spared:\n\n| pid | user | application | reason |\n| ---: | --- | --- | --- |\n| 4010 | migrator | migrations | protected application "migrations" |',
    );
    expect(md).toContain(
      '### kill-long (mitigate, 03:41:01)\n\n- **Selected:** 1 session\n- **Asked:** "Terminate long queries: terminate these 1 session?" → no (answered by non-interactive)\n- **Not executed:** declined',
    );
  });

  it('lists findings, the steps to do by hand and the operator notes', () => {
    const md = markdown();
    expect(md).toContain(
      '| 03:15:02 | warning | idle-leak | 25 sessions idle for more than 10m | 25 | kill-idle |',
    );
    expect(md).toContain(
      [
        '| Status | Step | Command | Notes |',
        '| --- | --- | --- | --- |',
        "| done | Application pool metrics (app-pool-metrics) | `curl http://prometheus:9090/api/v1/query -d 'query=db_pool_connections_active'` |   |",
        '| skipped | Recent deployments (recent-changes) | `kubectl rollout history deployment/api \\| head` | deploy 4711 went out at 03:02 |',
      ].join('\n'),
    );
    expect(md).toContain(
      '## Operator notes\n\n- 03:15:55 (on recent-changes): deploy 4711 went out at 03:02\n- 03:16:40: pool leak in checkout \\| see #4711  \n  \\# not a heading\n',
    );
  });

  it('keeps hostile query text and names inert: no HTML, no link, no broken table', () => {
    const md = markdown();
    const lines = md.split('\n');
    // Every table row has as many cells as its header.
    let header = 0;
    for (const line of lines) {
      if (!line.startsWith('|')) {
        header = 0;
        continue;
      }
      if (header === 0) header = cells(line);
      else expect(cells(line), line).toBe(header);
    }
    // Outside code spans there is no raw HTML, no link and no line break from the query text.
    for (const line of lines) {
      const bare = withoutCodeSpans(line);
      expect(bare, line).not.toMatch(/<(?!br>|CODE>)/);
      expect(bare, line).not.toMatch(/[^\\]\]\(/);
    }
    // The hostile query is one code span on one line, its pipes escaped for the table.
    expect(md).toContain(
      "| 4000 | app | evil\\|app&lt;img src=x onerror=alert(3)&gt; | 10.0.0.7 | idle | 900 | terminated |   | ``SELECT 1 /* </td><script>alert(1)</script> \\| [x](javascript:alert(2)) */ FROM `t` WHERE a = '\\|'`` |",
    );
  });
});

describe('Markdown escaping', () => {
  it.each([
    ['a|b', 'a\\|b'],
    ['x`y', 'x\\`y'],
    ['<b>&amp;', '&lt;b&gt;&amp;amp;'],
    ['[x](javascript:alert(1))', '\\[x\\](javascript:alert(1))'],
    ['**bold** ~~gone~~', '\\*\\*bold\\*\\* \\~\\~gone\\~\\~'],
    ['# heading', '\\# heading'],
    ['- item', '\\- item'],
    ['1. item', '1\\. item'],
    ['---', '\\---'],
    ['88.2', '88.2'],
    ['--yes', '--yes'],
    ['pg_stat_activity', 'pg_stat_activity'],
    ['two\nlines\r\n', 'two lines '],
    ['\u001b[31mred\u001b[0m\u202e', 'red'],
    ['back\\slash', 'back\\\\slash'],
  ])('mdText(%j) = %j', (input, expected) => {
    expect(mdText(input)).toBe(expected);
  });

  it.each([
    ['SELECT 1', '`SELECT 1`'],
    ['a ` b', '``a ` b``'],
    ['`x`', '`` `x` ``'],
    ['a|b', '`a\\|b`'],
    ['</td><script>', '`</td><script>`'],
  ])('mdCode(%j) = %j', (input, expected) => {
    expect(mdCode(input)).toBe(expected);
  });
});

describe('HTML export', () => {
  const page = () => toHtml(report(), { poolctl: '0.1.0', source: '/x/inc-fixture.jsonl' });

  it('is one page that loads nothing and runs nothing', () => {
    const h = page();
    expect(h.startsWith('<!doctype html>')).toBe(true);
    expect(h).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    );
    expect(h).not.toMatch(/<script/i);
    expect(h).not.toMatch(/url\(|@import/i);
    // Text has no '<' left, so every '<' starts a tag poolctl wrote: none loads or runs anything.
    const tags = [...h.matchAll(/<([a-z][a-z0-9]*)\b([^>]*)>/gi)];
    const allowed = new Set(
      'html head meta title style body h1 h2 h3 p strong dl dt dd table thead tbody tr th td span code ul li div hr svg line text polyline circle'.split(
        ' ',
      ),
    );
    for (const [, tag] of tags) expect(allowed, tag).toContain(tag!.toLowerCase());
    for (const [, , attrs] of tags) expect(attrs).not.toMatch(/\s(src|href|on\w+|style)\s*=/i);
  });

  it('escapes every server-provided string', () => {
    const h = page();
    expect(h).toContain(
      '<code>SELECT 1 /* &lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt; | [x](javascript:alert(2)) */ FROM `t` WHERE a = &#39;|&#39;</code>',
    );
    expect(h).toContain('evil|app&lt;img src=x onerror=alert(3)&gt;');
    expect(h).not.toContain('<img');
  });

  it('has the same sections and numbers as the Markdown', () => {
    const h = page();
    for (const heading of [
      'Summary',
      'Timeline',
      'Evidence',
      'Actions',
      'Findings',
      'To do by hand',
      'Operator notes',
    ])
      expect(h).toContain(`<h2>${heading}</h2>`);
    expect(h).toContain(
      '<tr><td>utilization</td><td class="n">96.9%</td><td class="n">46.4%</td></tr>',
    );
    expect(h).toContain('<dt>Run by</dt><dd>alice@bastion-1</dd>');
  });

  it('charts utilization over the incident with the critical threshold and the actions', () => {
    const h = page();
    const svg = /<svg[^>]*>(.*)<\/svg>/s.exec(h)?.[1] ?? '';
    // diagnose, before kill-idle, after kill-idle, verify, before kill-long.
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg).toContain('<title>03:16:21 after kill-idle: 41.2%</title>');
    expect(svg).toMatch(/<text [^>]*>critical 92%<\/text>/);
    expect(svg).toMatch(/<text [^>]*>warning 90%<\/text>/);
    expect(svg).toMatch(/<text [^>]*>kill-idle<\/text>/);
    // Declined actions changed nothing: no marker.
    expect(svg).not.toMatch(/>kill-long</);
  });
});

describe('JSON export', () => {
  it('is { incident, events, summary } with the computed numbers', () => {
    const doc = JSON.parse(toJson(report(), EVENTS)) as {
      incident: string;
      events: RecordedEvent[];
      summary: Record<string, unknown> & {
        before: { metrics: Record<string, number> };
        after: { label: string; metrics: Record<string, number> };
        peak: { label: string };
        measurements: unknown[];
      };
    };
    expect(Object.keys(doc)).toEqual(['incident', 'events', 'summary']);
    expect(doc.incident).toBe('inc-fixture');
    expect(doc.events).toHaveLength(EVENTS.length);
    expect(doc.summary.status).toBe('healthy');
    expect(doc.summary.exitCode).toBe(5);
    expect(doc.summary.operators).toEqual(['alice@bastion-1']);
    expect(doc.summary.before.metrics.utilization_percent).toBe(96.9);
    expect(doc.summary.after).toMatchObject({
      label: 'before kill-long',
      metrics: { utilization_percent: 46.4 },
    });
    expect(doc.summary.peak.label).toBe('diagnose');
    expect(doc.summary.thresholds).toEqual({ warning: 90, critical: 92 });
    expect(doc.summary.actions).toEqual({
      executed: 1,
      declined: 1,
      dryRun: 0,
      outcomes: { terminated: 2, 'already-gone': 1 },
    });
    expect(doc.summary.measurements).toHaveLength(5);
  });
});

// ---------------------------------------------------------------------------------------------
// The command: option parsing as a table, then runTranscript against files in a temp state dir.

describe('parseTranscriptOptions', () => {
  it.each([
    [{}, ['list'], { sub: 'list', format: 'md', output: 'human' }],
    [{ output: 'json' }, ['list'], { sub: 'list', format: 'md', output: 'json' }],
    [{}, ['show', 'inc-1'], { sub: 'show', source: 'inc-1', format: 'md', output: 'human' }],
    [
      { format: 'html' },
      ['export', 'x.jsonl'],
      { sub: 'export', source: 'x.jsonl', format: 'html', output: 'human' },
    ],
    [
      { out: 'report.HTML' },
      ['export', 'inc-1'],
      { sub: 'export', source: 'inc-1', outFile: 'report.HTML', format: 'html', output: 'human' },
    ],
    [
      { out: 'r.json', format: 'md' },
      ['export', 'inc-1'],
      { sub: 'export', source: 'inc-1', outFile: 'r.json', format: 'md', output: 'human' },
    ],
    [
      { out: 'notes.txt' },
      ['export', 'inc-1'],
      { sub: 'export', source: 'inc-1', outFile: 'notes.txt', format: 'md', output: 'human' },
    ],
  ])('%j %j', (flags, args, expected) => {
    expect(parseTranscriptOptions(flags, args)).toEqual(expected);
  });

  it.each([
    [{}, [], 'transcript: expected list, show FILE|INCIDENT or export FILE|INCIDENT'],
    [{}, ['list', 'x'], 'transcript list: unexpected argument "x"'],
    [{}, ['export'], 'transcript export: expected one transcript file or incident id'],
    [{ format: 'pdf' }, ['export', 'x'], '--format pdf: expected md, json or html'],
    [{ out: 'x.md' }, ['show', 'x'], '-o goes with transcript export'],
  ])('%j %j → %s', (flags, args, message) => {
    expect(() => parseTranscriptOptions(flags, args)).toThrow(new UsageError(message));
  });
});

describe('runTranscript', () => {
  let state: string;
  let dir: string;
  beforeEach(() => {
    state = mkdtempSync(join(tmpdir(), 'poolctl-export-'));
    dir = join(state, 'poolctl', 'incidents');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  });
  afterEach(() => rmSync(state, { recursive: true, force: true }));

  const jsonl = (events: RecordedEvent[]) => events.map((e) => JSON.stringify(e)).join('\n');
  const env = () => ({ XDG_STATE_HOME: state });
  async function run(opts: Partial<TranscriptOptions> & Pick<TranscriptOptions, 'sub'>) {
    let out = '';
    let err = '';
    const code = await runTranscript(
      { format: 'md', output: 'human', ...opts },
      {
        out: (s) => (out += s),
        err: (s) => (err += s),
        env: env(),
        style: makeStyle(false),
      },
    );
    return { code, out, err };
  }

  it('exports an incident by id, and a file by path', async () => {
    writeFileSync(join(dir, 'inc-fixture.jsonl'), `${jsonl(EVENTS)}\n`);
    const byId = await run({ sub: 'export', source: 'inc-fixture' });
    expect(byId).toMatchObject({ code: 0, err: '' });
    expect(byId.out).toContain('# Incident inc-fixture: ');
    expect(byId.out).toContain(`Exported by poolctl `);
    const byPath = await run({
      sub: 'export',
      source: join(dir, 'inc-fixture.jsonl'),
      format: 'json',
    });
    expect(JSON.parse(byPath.out).summary.exitCode).toBe(5);
  });

  it('exports a transcript torn by a crash, with a warning on stderr', async () => {
    const torn = `${jsonl(EVENTS.slice(0, 16))}\n{"type":"step.start","ts":"2026-11-22T03:16:2`;
    writeFileSync(join(dir, 'torn.jsonl'), torn);
    const r = await run({ sub: 'export', source: 'torn' });
    expect(r.code).toBe(0);
    expect(r.err).toContain(
      `poolctl: warning: ${join(dir, 'torn.jsonl')}: the last line is incomplete (a write torn by a crash?): skipped; the 16 events before it are complete\n`,
    );
    expect(r.err).toContain(
      'poolctl: warning: the last run (diagnose, started 2026-11-22T03:15:02.000Z) has no end: it crashed or is still running\n',
    );
    expect(r.out).toContain('- **Final status:** incomplete, exit code none');
    expect(r.out).toContain('> **Warning:** the last line is incomplete');
    expect(r.out).toContain('- **Outcome:** terminated 2, already-gone 1');
  });

  it('skips a torn line in the middle (the incident went on after a crash)', async () => {
    const text = `${jsonl(EVENTS.slice(0, 3))}\n{"type":"metr\n${jsonl(EVENTS.slice(3))}\n`;
    writeFileSync(join(dir, 'mid.jsonl'), text);
    const r = await run({ sub: 'export', source: 'mid', format: 'json' });
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^poolctl: warning: .*mid\.jsonl: line 4 skipped: /);
    expect(JSON.parse(r.out).events).toHaveLength(EVENTS.length);
  });

  it.each([
    [
      'inc-nope',
      /^no transcript "inc-nope": no such file, and no incident of that id in .*incidents \(see: poolctl transcript list\)$/,
    ],
    ['./missing.jsonl', /^no transcript "\.\/missing\.jsonl": no such file/],
  ])('a missing file or unknown incident (%s) is exit 2 naming it', async (source, message) => {
    const err = await run({ sub: 'export', source }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(exitCodeOf(err)).toBe(2);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('a file that is not a transcript is exit 2', async () => {
    writeFileSync(join(dir, 'junk.jsonl'), 'hello\nworld\n');
    const err = await run({ sub: 'show', source: 'junk' }).catch((e: unknown) => e);
    expect(exitCodeOf(err)).toBe(2);
    expect((err as Error).message).toMatch(
      /junk\.jsonl: not a poolctl transcript \(line 1 skipped: /,
    );
  });

  it('-o writes the export with mode 0600, also over a wider existing file', async () => {
    writeFileSync(join(dir, 'inc-fixture.jsonl'), `${jsonl(EVENTS)}\n`);
    const out = join(state, 'report.html');
    writeFileSync(out, 'old', { mode: 0o644 });
    const r = await run({ sub: 'export', source: 'inc-fixture', format: 'html', outFile: out });
    expect(r).toEqual({ code: 0, out: '', err: '' });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8')).toContain('<h1>Incident inc-fixture: ');
  });

  it('-o into a missing directory is exit 2 naming the file', async () => {
    writeFileSync(join(dir, 'inc-fixture.jsonl'), `${jsonl(EVENTS)}\n`);
    const out = join(state, 'no', 'such', 'r.md');
    const err = await run({ sub: 'export', source: 'inc-fixture', outFile: out }).catch(
      (e: unknown) => e,
    );
    expect(exitCodeOf(err)).toBe(2);
    expect((err as Error).message).toBe(`-o ${out}: cannot write the export: no such directory`);
  });

  it('list: newest first, as columns or JSON', async () => {
    writeFileSync(join(dir, 'inc-fixture.jsonl'), `${jsonl(EVENTS)}\n`);
    writeFileSync(
      join(dir, 'inc-later.jsonl'),
      `${jsonl([{ ...EVENTS[0]!, ts: '2026-11-23T01:00:00.000Z', incident: 'inc-later' }])}\n`,
    );
    const table = await run({ sub: 'list' });
    expect(table.out.split('\n')).toEqual([
      'INCIDENT     STARTED (UTC)        COMMANDS            STATUS      EXIT  PATH',
      `inc-later    2026-11-23 01:00:00  diagnose            incomplete  -     ${join(dir, 'inc-later.jsonl')}`,
      `inc-fixture  2026-11-22 03:15:02  diagnose, mitigate  healthy     5     ${join(dir, 'inc-fixture.jsonl')}`,
      '',
    ]);
    const json = JSON.parse((await run({ sub: 'list', output: 'json' })).out) as {
      incidents: { incident: string }[];
    };
    expect(json.incidents.map((i) => i.incident)).toEqual(['inc-later', 'inc-fixture']);
  });

  it('list with no incidents says where it looked', async () => {
    expect(await run({ sub: 'list' })).toEqual({
      code: 0,
      out: '',
      err: `poolctl: no transcripts in ${dir}\n`,
    });
  });

  it('show: the timeline in plain columns', async () => {
    writeFileSync(join(dir, 'inc-fixture.jsonl'), `${jsonl(EVENTS)}\n`);
    const r = await run({ sub: 'show', source: 'inc-fixture' });
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(
      'Incident inc-fixture  2026-11-22 03:15:02 → 03:41:10 UTC  healthy, exit 5',
    );
    expect(lines[3]).toBe('TIME      ELAPSED  EVENT    WHAT HAPPENED');
    expect(lines).toContain(
      '03:16:21   +01:19  action   kill-idle (terminate): terminated 2, already-gone 1 of 3; 1 spared · utilization 96.9% → 41.2%',
    );
    expect(lines).toContain(
      '03:15:02   +00:00  step     Idle connections (leak suspects) (idle-leaks): ok, 25 rows, 30 ms',
    );
    expect(r.out).not.toContain('\u001b[');
  });
});
