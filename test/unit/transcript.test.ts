import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError, exitCodeOf } from '../../src/errors.js';
import {
  incidentsDir,
  newIncidentId,
  stateDir,
  transcriptPathFor,
  validateIncidentId,
} from '../../src/transcript/paths.js';
import {
  TRANSCRIPT_SCHEMA,
  type SessionStartEvent,
  type TranscriptEvent,
} from '../../src/transcript/types.js';
import {
  TranscriptError,
  listTranscripts,
  openTranscript,
  readTranscript,
} from '../../src/transcript/writer.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'poolctl-transcript-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const mode = (p: string) => statSync(p).mode & 0o777;
const rawLines = (p: string) => readFileSync(p, 'utf8').split('\n').slice(0, -1);
const clock = (iso: string) => () => new Date(iso);

function start(command: string): SessionStartEvent {
  return {
    type: 'session.start',
    schema: TRANSCRIPT_SCHEMA,
    command,
    argv: [command],
    runbook: 'pg-pool-exhausted',
    targets: ['postgres'],
    poolctl: '0.1.0',
    mode: 'non-interactive',
    parameters: {},
    operator: { user: 'oncall', host: 'laptop' },
  };
}

/** What the types forbid and the writer must still survive (forged stamps, secrets, Errors). */
const untyped = (e: Record<string, unknown>) => e as unknown as TranscriptEvent;

describe('openTranscript', () => {
  it('creates missing directories 0700 and the file 0600', () => {
    const dir = join(tmp, 'state', 'poolctl', 'incidents');
    const path = join(dir, 'inc-1.jsonl');
    const t = openTranscript(path, 'inc-1');
    t.append(start('diagnose'));
    expect(mode(join(tmp, 'state'))).toBe(0o700);
    expect(mode(dir)).toBe(0o700);
    expect(mode(path)).toBe(0o600);
    t.end('healthy', 0);
  });

  it('tightens an existing file that is readable by others', () => {
    const path = join(tmp, 'loose.jsonl');
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    openTranscript(path, 'loose').end('healthy', 0);
    expect(mode(path)).toBe(0o600);
  });

  it('writes one JSON object per line, stamped with ts and incident, readable at once', () => {
    const path = join(tmp, 'inc-2.jsonl');
    const t = openTranscript(path, 'inc-2', { now: clock('2026-11-22T03:15:02.000Z') });
    t.append(start('diagnose'));
    // Another reader sees the event before the session ends.
    expect(rawLines(path)).toHaveLength(1);
    t.append({
      type: 'step.start',
      step: 'utilization',
      title: 'How full',
      kind: 'query',
      phase: 'diagnose',
    });
    t.append({
      type: 'step.result',
      step: 'utilization',
      status: 'ok',
      durationMs: 12,
      rowCount: 1,
      rows: [{ connections: 97, at: new Date('2026-11-22T03:15:01Z'), big: 2n ** 64n }],
    });
    t.append({ type: 'note', text: 'multi\nline\tnote' });

    const lines = rawLines(path);
    expect(lines).toHaveLength(4);
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e.type)).toEqual([
      'session.start',
      'step.start',
      'step.result',
      'note',
    ]);
    for (const e of events) {
      expect(Object.keys(e).slice(0, 3)).toEqual(['type', 'ts', 'incident']);
      expect(e.ts).toBe('2026-11-22T03:15:02.000Z');
      expect(e.incident).toBe('inc-2');
    }
    expect(events[2]?.rows).toEqual([
      { connections: 97, at: '2026-11-22T03:15:01.000Z', big: '18446744073709551616' },
    ]);
    expect(events[3]?.text).toBe('multi\nline\tnote');
    expect(readTranscript(path)).toEqual(events);
    t.end('healthy', 0);
  });

  it('lets the writer own ts and incident', () => {
    const path = join(tmp, 'own.jsonl');
    const t = openTranscript(path, 'own', { now: clock('2026-01-01T00:00:00.000Z') });
    t.append(untyped({ type: 'note', text: 'x', ts: 'forged', incident: 'other' }));
    expect(readTranscript(path)[0]).toMatchObject({
      ts: '2026-01-01T00:00:00.000Z',
      incident: 'own',
    });
  });

  it('never writes a password: DSNs, conninfo, argv and secret fields are redacted', () => {
    const path = join(tmp, 'redact.jsonl');
    const t = openTranscript(path, 'redact');
    t.append({
      ...start('diagnose'),
      argv: ['diagnose', '--pg', 'postgres://app:Sup3rS3cret@db:5432/orders', '--yes'],
      targets: ['postgres://app:Sup3rS3cret@db:5432/orders'],
    });
    t.append(
      untyped({
        type: 'step.result',
        step: 'holders',
        status: 'failed',
        durationMs: 3,
        rowCount: 0,
        rows: [{ query: "ALTER ROLE app PASSWORD 'Sup3rS3cret'" }],
        error: new Error('connect to host=db user=app password=Sup3rS3cret failed'),
      }),
    );
    t.append(
      untyped({ type: 'note', text: 'PGPASSWORD=Sup3rS3cret psql', password: 'Sup3rS3cret' }),
    );
    t.end('healthy', 0);

    const raw = readFileSync(path, 'utf8');
    expect(raw).not.toContain('Sup3rS3cret');
    expect(raw).toContain('postgres://app:***@db:5432/orders');
    const [, result] = readTranscript(path);
    expect(result).toMatchObject({
      error: { name: 'Error', message: 'connect to host=db user=app password=*** failed' },
    });
  });

  it('strips escape sequences and control characters from server-supplied text', () => {
    const path = join(tmp, 'ctl.jsonl');
    const t = openTranscript(path, 'ctl');
    t.append({
      type: 'step.result',
      step: 'holders',
      status: 'ok',
      durationMs: 1,
      rowCount: 1,
      rows: [
        {
          application: 'evil\x1b]8;;https://phish.example\x07app\x1b]8;;\x07\x07',
          query: 'SELECT 1\x1b[2J\u009b1m\u202e',
        },
      ],
    });
    t.end('healthy', 0);
    const raw = readFileSync(path, 'utf8');
    expect(raw).not.toMatch(/\\u001b|\\u0007|\u009b|\u202e|phish/);
    const [result] = readTranscript(path);
    expect(result?.type === 'step.result' && result.rows).toEqual([
      { application: 'evilapp', query: 'SELECT 1' },
    ]);
  });

  it('writes session.end once, and ignores appends after it', () => {
    const path = join(tmp, 'end.jsonl');
    const t = openTranscript(path, 'end');
    t.append(start('verify'));
    t.end('critical', 4);
    t.end('healthy', 0);
    t.append({ type: 'note', text: 'too late' });
    const events = readTranscript(path);
    expect(events.map((e) => e.type)).toEqual(['session.start', 'session.end']);
    expect(events[1]).toMatchObject({ status: 'critical', exitCode: 4 });
  });

  it('appends the sessions of one incident to the same file', () => {
    const env = { XDG_STATE_HOME: join(tmp, 'xdg'), HOME: join(tmp, 'home') };
    const now = new Date('2026-11-22T03:15:02Z');
    const first = transcriptPathFor({ incident: 'INC-1234', env, now });
    const second = transcriptPathFor({ incident: 'INC-1234', env, now });
    expect(second.path).toBe(first.path);

    const a = openTranscript(first.path, first.incident);
    a.append(start('diagnose'));
    a.end('critical', 4);
    const b = openTranscript(second.path, second.incident);
    b.append(start('mitigate'));
    b.append({
      type: 'action',
      id: 'kill-idle',
      title: 'Terminate idle',
      kind: 'terminate',
      dryRun: false,
      declined: false,
      executed: true,
      victims: [],
      results: [],
      spared: [],
      stoppedEarly: false,
      outcomes: {},
    });
    b.end('healthy', 0);

    const events = readTranscript(first.path);
    expect(events.map((e) => e.type)).toEqual([
      'session.start',
      'session.end',
      'session.start',
      'action',
      'session.end',
    ]);
    expect(events.flatMap((e) => (e.type === 'session.start' ? [e.command] : []))).toEqual([
      'diagnose',
      'mitigate',
    ]);
    expect(listTranscripts(incidentsDir(env))).toEqual([
      expect.objectContaining({
        incident: 'INC-1234',
        command: 'diagnose, mitigate',
        status: 'healthy',
        exitCode: 0,
      }),
    ]);
  });

  it('starts on a new line after a write torn by a crash', () => {
    const path = join(tmp, 'torn.jsonl');
    writeFileSync(path, '{"type":"note","text":"whole"}\n{"type":"step.res');
    const t = openTranscript(path, 'torn');
    t.append({ type: 'note', text: 'after the crash' });
    t.end('healthy', 0);
    const bad: number[] = [];
    const events = readTranscript(path, { onBadLine: (n) => bad.push(n) });
    expect(bad).toEqual([2]);
    expect(events.map((e) => (e.type === 'note' ? e.text : e.type))).toEqual([
      'whole',
      'after the crash',
      'session.end',
    ]);
  });

  it('goes on unrecorded after a failed append, warning once; a commit then refuses', () => {
    // /dev/full accepts open() and fails every write with ENOSPC: a full disk, on demand.
    const warnings: string[] = [];
    const t = openTranscript('/dev/full', 'full', { warn: (m) => warnings.push(m) });
    expect(t.unrecorded).toBeUndefined();
    expect(() => t.append(start('diagnose'))).not.toThrow();
    t.append({ type: 'note', text: 'second' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /cannot write transcript \/dev\/full: .*ENOSPC.*nothing more is being recorded/,
    );
    expect(t.unrecorded).toMatch(/ENOSPC/);
    let err: unknown;
    try {
      t.commit({
        type: 'intent',
        step: 'kill-idle',
        title: 'Kill',
        mode: 'terminate',
        victims: [],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TranscriptError);
    expect(String((err as Error).message)).toMatch(/cannot write transcript \/dev\/full: .*ENOSPC/);
    expect(exitCodeOf(err)).toBe(2);
    expect(() => t.end('critical', 1)).not.toThrow();
  });

  it('commit throws when the very first write fails', () => {
    const t = openTranscript('/dev/full', 'full');
    expect(() =>
      t.commit({
        type: 'intent',
        step: 'kill-idle',
        title: 'Kill',
        mode: 'terminate',
        victims: [],
      }),
    ).toThrow(TranscriptError);
  });

  it('reports a path that cannot be opened', () => {
    const file = join(tmp, 'plain-file');
    writeFileSync(file, 'x');
    const path = join(file, 'inc.jsonl'); // a file where a directory should be
    expect(() => openTranscript(path, 'inc')).toThrow(
      new RegExp(`cannot open transcript ${path}: .*(ENOTDIR|EEXIST)`),
    );
  });
});

describe('readTranscript', () => {
  it('skips a torn last line', () => {
    const path = join(tmp, 'crash.jsonl');
    writeFileSync(path, '{"type":"session.start","command":"diagnose"}\n{"type":"step.start","st');
    expect(readTranscript(path)).toMatchObject([{ type: 'session.start', command: 'diagnose' }]);
  });

  it('reports other bad lines with their line number', () => {
    const path = join(tmp, 'bad.jsonl');
    writeFileSync(
      path,
      '{"type":"note","text":"a"}\nnot json\n[1,2]\n{"type":"note","text":"b"}\n',
    );
    expect(() => readTranscript(path)).toThrow(
      /bad\.jsonl: not a valid transcript: line 2: .*; line 3: not a transcript event/,
    );
    const bad: number[] = [];
    const events = readTranscript(path, { onBadLine: (n) => bad.push(n) });
    expect(bad).toEqual([2, 3]);
    expect(events.map((e) => e.type === 'note' && e.text)).toEqual(['a', 'b']);
  });

  it('names the path of a missing file', () => {
    const path = join(tmp, 'missing.jsonl');
    expect(() => readTranscript(path)).toThrow(`cannot read transcript ${path}`);
  });
});

describe('listTranscripts', () => {
  it('summarises each incident, newest first', () => {
    const dir = join(tmp, 'incidents');
    const old = openTranscript(join(dir, 'old.jsonl'), 'old', {
      now: clock('2026-11-20T10:00:00Z'),
    });
    old.append(start('diagnose'));
    old.end('critical', 4);
    const running = openTranscript(join(dir, 'new.jsonl'), 'new', {
      now: clock('2026-11-22T03:00:00Z'),
    });
    running.append(start('mitigate'));
    writeFileSync(join(dir, 'README.txt'), 'not a transcript');
    writeFileSync(join(dir, 'empty.jsonl'), '');
    utimesSync(
      join(dir, 'empty.jsonl'),
      new Date('2026-11-21T00:00:00Z'),
      new Date('2026-11-21T00:00:00Z'),
    );

    const list = listTranscripts(dir);
    expect(list.map((s) => [s.incident, s.command, s.status, s.exitCode])).toEqual([
      ['new', 'mitigate', 'incomplete', null],
      ['empty', '', 'empty', null],
      ['old', 'diagnose', 'critical', 4],
    ]);
    expect(list[0]?.started).toBe('2026-11-22T03:00:00.000Z');
    expect(list[2]?.sizeBytes).toBe(statSync(join(dir, 'old.jsonl')).size);
    expect(list[2]?.path).toBe(join(dir, 'old.jsonl'));
  });

  it('returns nothing for a directory that does not exist yet', () => {
    expect(listTranscripts(join(tmp, 'nope'))).toEqual([]);
  });
});

describe('paths', () => {
  it('uses $XDG_STATE_HOME, else ~/.local/state', () => {
    expect(stateDir({ XDG_STATE_HOME: '/x/state', HOME: '/home/u' })).toBe('/x/state/poolctl');
    expect(incidentsDir({ XDG_STATE_HOME: '/x/state' })).toBe('/x/state/poolctl/incidents');
    expect(stateDir({ HOME: '/home/u' })).toBe('/home/u/.local/state/poolctl');
    expect(stateDir({ XDG_STATE_HOME: '', HOME: '/home/u' })).toBe('/home/u/.local/state/poolctl');
    // A relative XDG path is invalid by the spec and ignored.
    expect(stateDir({ XDG_STATE_HOME: 'rel', HOME: '/home/u' })).toBe(
      '/home/u/.local/state/poolctl',
    );
  });

  it('puts the default transcript in the XDG incidents directory', () => {
    const now = new Date('2026-11-22T03:15:02.999Z');
    const r = transcriptPathFor({ env: { XDG_STATE_HOME: '/x/state' }, now });
    expect(r.incident).toMatch(/^inc-20261122-031502-[0-9a-z]{4}$/);
    expect(r.path).toBe(`/x/state/poolctl/incidents/${r.incident}.jsonl`);
  });

  it('makes incident ids from UTC time and 4 random base36 characters', () => {
    const now = new Date('2026-01-02T23:04:05Z');
    const ids = new Set(Array.from({ length: 50 }, () => newIncidentId(now)));
    for (const id of ids) expect(id).toMatch(/^inc-20260102-230405-[0-9a-z]{4}$/);
    expect(ids.size).toBeGreaterThan(40);
  });

  it('lets --transcript win, taking the incident from the file name', () => {
    const env = { XDG_STATE_HOME: '/x/state' };
    const now = new Date();
    expect(transcriptPathFor({ transcriptFlag: '/tmp/INC-77.jsonl', env, now })).toEqual({
      path: '/tmp/INC-77.jsonl',
      incident: 'INC-77',
    });
    expect(
      transcriptPathFor({ transcriptFlag: '/tmp/a.jsonl', incident: 'INC-9', env, now }),
    ).toEqual({
      path: '/tmp/a.jsonl',
      incident: 'INC-9',
    });
    expect(transcriptPathFor({ transcriptFlag: 'rel/x.jsonl', env, now }).path).toBe(
      join(process.cwd(), 'rel/x.jsonl'),
    );
  });

  it.each(['INC-1234', 'inc-20261122-031502-k3f9', 'a', 'db_1.prod', 'x'.repeat(64)])(
    'accepts --incident %s',
    (id) => {
      expect(validateIncidentId(id)).toBe(id);
    },
  );

  it.each([
    '',
    '../etc/passwd',
    'a/b',
    'a\\b',
    '..',
    '.',
    'has space',
    'x'.repeat(65),
    'é',
    'a\x1b[31m',
  ])('rejects --incident %j', (id) => {
    expect(() => validateIncidentId(id)).toThrow(UsageError);
    expect(() => validateIncidentId(id)).toThrow(/^--incident .*: use letters, digits, -, _ or \./);
    expect(() => transcriptPathFor({ incident: id, env: {}, now: new Date() })).toThrow(UsageError);
  });
});
