import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { sanitizeValue } from '../io/sanitize.js';
import { redactValue } from './redact.js';
import type { Transcript, TranscriptEvent } from './types.js';

/** The transcript file could not be opened, written or read: exit 2, the message names the path. */
export class TranscriptError extends UsageError {
  override name = 'TranscriptError';
}

/**
 * Opens (or continues) the transcript at `path` for appending. Parent directories are created
 * with mode 0700 and the file is (made) 0600. Each `append` stamps `ts` and `incident`, redacts
 * credentials, strips control characters, and writes one line with a single `write`, so
 * concurrent writers to the same incident file do not interleave inside a line and a crash or
 * kill of poolctl loses nothing. What was decided or done is also fsynced at once (the file, and
 * a new file's directory entry with it), to survive the machine itself; the start of the run and
 * read-only evidence (step results, findings, metrics) ride along with the next fsync. An fsync
 * per evidence line cost 3–40 ms per diagnose here, a third of the run on a busy disk, and the
 * start's own fsyncs (file and directory) held up the first query by 2–4 ms.
 */
const DURABLE_EVENTS = new Set<TranscriptEvent['type']>([
  'prompt',
  'action',
  'manual',
  'note',
  'session.end',
]);

export function openTranscript(
  path: string,
  incident: string,
  opts: { now?: () => Date } = {},
): Transcript {
  const now = opts.now ?? (() => new Date());
  const { fd, created } = openForAppend(path);
  let dirSynced = !created;
  let ended = false;

  const write = (event: TranscriptEvent): void => {
    // The writer owns ts and incident, and puts them first for a reader of the raw file.
    const stamped: Record<string, unknown> = {
      type: event.type,
      ts: now().toISOString(),
      incident,
    };
    for (const [k, v] of Object.entries(event)) if (!(k in stamped)) stamped[k] = v;
    const record = toJson(stamped);
    const line = JSON.stringify(sanitizeValue(redactValue(record))) + '\n';
    try {
      writeAll(fd, Buffer.from(line, 'utf8'));
      if (DURABLE_EVENTS.has(event.type)) {
        fs.fsyncSync(fd);
        if (!dirSynced) {
          fsyncDir(dirname(path));
          dirSynced = true;
        }
      }
    } catch (err) {
      throw new TranscriptError(`cannot write transcript ${path}: ${messageOf(err)}`, {
        cause: err,
      });
    }
  };

  return {
    path,
    incident,
    append(event) {
      if (!ended) write(event);
    },
    end(status, exitCode) {
      if (ended) return;
      ended = true;
      // end() runs from the top-level error handler: a failure here must not replace the error
      // being reported, and there is nothing better to do with it.
      try {
        write({ type: 'session.end', status, exitCode });
      } catch {
        /* already reported by an earlier append, or the disk is gone */
      }
      try {
        fs.closeSync(fd);
      } catch {
        /* see above */
      }
    },
  };
}

/** The file open for appending, and whether it is new (its directory entry not yet synced). */
function openForAppend(path: string): { fd: number; created: boolean } {
  let fd: number;
  let existed: boolean;
  try {
    const dir = dirname(path);
    const madeDir = fs.mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
    existed = !madeDir && fs.existsSync(path);
    fd = fs.openSync(path, 'a+', 0o600);
  } catch (err) {
    throw new TranscriptError(`cannot open transcript ${path}: ${messageOf(err)}`, { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isFile() && (st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
    // A crash in the middle of a write leaves a line without its newline; end it, so the next
    // event starts on a line of its own and only the torn line is unreadable.
    if (st.size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, st.size - 1);
      if (last[0] !== 0x0a) writeAll(fd, Buffer.from('\n'));
    }
  } catch (err) {
    fs.closeSync(fd);
    throw new TranscriptError(`cannot open transcript ${path}: ${messageOf(err)}`, { cause: err });
  }
  return { fd, created: !existed };
}

/** Makes a new file's directory entry durable too; not every file system supports it. */
function fsyncDir(dir: string): void {
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* best effort */
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/** Turns Dates, BigInts, Errors and Buffers into plain JSON values before redaction. */
function toJson(value: unknown): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Error) {
        const code = (v as { code?: unknown }).code;
        return { name: v.name, message: v.message, ...(code === undefined ? {} : { code }) };
      }
      return v;
    }),
  ) as Record<string, unknown>;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads a transcript. A last line without its newline that does not parse is a write torn by a
 * crash and is skipped. Any other bad line throws a `TranscriptError` naming the path and line
 * numbers, unless `onBadLine` is given: then it is told, and reading goes on.
 */
export function readTranscript(
  path: string,
  opts: { onBadLine?: (line: number, reason: string) => void } = {},
): TranscriptEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new TranscriptError(`cannot read transcript ${path}: ${messageOf(err)}`, { cause: err });
  }
  const lines = text.split('\n');
  const torn = lines.length - 1; // index of the text after the last newline ('' if none)
  const events: TranscriptEvent[] = [];
  const bad: string[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let reason: string;
    try {
      const v: unknown = JSON.parse(line);
      if (isEvent(v)) {
        events.push(v);
        return;
      }
      reason = 'not a transcript event (an object with a "type")';
    } catch (err) {
      if (i === torn) return;
      reason = messageOf(err);
    }
    if (opts.onBadLine) opts.onBadLine(i + 1, reason);
    else bad.push(`line ${i + 1}: ${reason}`);
  });
  if (bad.length > 0) {
    throw new TranscriptError(`${path}: not a valid transcript: ${bad.slice(0, 5).join('; ')}`);
  }
  return events;
}

function isEvent(v: unknown): v is TranscriptEvent {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    typeof (v as { type?: unknown }).type === 'string'
  );
}

/** One incident file, summarised for `poolctl transcript list`. */
export interface TranscriptSummary {
  path: string;
  incident: string;
  /** `ts` of the first event (ISO, UTC); the file's mtime when it has none. */
  started: string;
  /** The commands of the sessions in the file, in order: `diagnose, mitigate`. */
  command: string;
  /** `status` of the last `session.end`; `incomplete` when the last session never ended. */
  status: string;
  exitCode: number | null;
  sizeBytes: number;
}

/** The `.jsonl` transcripts in `dir`, newest first; a missing directory has none. */
export function listTranscripts(dir: string): TranscriptSummary[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return [];
    throw new TranscriptError(`cannot list transcripts in ${dir}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  const out: TranscriptSummary[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      continue; // removed while listing
    }
    if (!st.isFile()) continue;
    out.push(summarize(path, name.slice(0, -'.jsonl'.length), st));
  }
  return out.sort((a, b) => (a.started < b.started ? 1 : a.started > b.started ? -1 : 0));
}

function summarize(path: string, fileIncident: string, st: fs.Stats): TranscriptSummary {
  const summary: TranscriptSummary = {
    path,
    incident: fileIncident,
    started: st.mtime.toISOString(),
    command: '',
    status: 'unreadable',
    exitCode: null,
    sizeBytes: st.size,
  };
  let events: TranscriptEvent[];
  try {
    events = readTranscript(path, { onBadLine: () => {} });
  } catch {
    return summary;
  }
  const first = events[0];
  if (typeof first?.ts === 'string') summary.started = first.ts;
  if (typeof first?.incident === 'string') summary.incident = first.incident;
  const commands: string[] = [];
  summary.status = events.length === 0 ? 'empty' : 'incomplete';
  for (const e of events) {
    if (e.type === 'session.start') {
      if (typeof e.command === 'string') commands.push(e.command);
      summary.status = 'incomplete';
      summary.exitCode = null;
    } else if (e.type === 'session.end') {
      summary.status = typeof e.status === 'string' ? e.status : 'unknown';
      summary.exitCode = typeof e.exitCode === 'number' ? e.exitCode : null;
    }
  }
  summary.command = commands.join(', ');
  return summary;
}
