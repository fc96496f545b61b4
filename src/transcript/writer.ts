import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { sanitizeValue } from '../io/sanitize.js';
import { redactValue } from './redact.js';
import { normalizeEvent } from './normalize.js';
import type { RecordedEvent, Transcript, TranscriptEvent } from './types.js';

/** The transcript file could not be opened, written or read: exit 2, the message names the path. */
export class TranscriptError extends UsageError {
  override name = 'TranscriptError';
}

/**
 * Opens (or continues) the transcript at `path` for appending. Parent directories are created
 * with mode 0700 and the file is (made) 0600. Each event is stamped with `ts`, `incident` and
 * `run` (this run's id, so the reader can tell apart two runs of one incident writing at once),
 * redacted, stripped of control characters, and written as one line with a single `write` on an
 * O_APPEND descriptor, so concurrent writers to the same incident file do not interleave inside
 * a line and a kill of poolctl loses nothing written.
 *
 * Two kinds of write, because a diagnosis and a kill need different things from the record:
 * - `append` (evidence, questions, outcomes) is best effort. When the file cannot be opened or
 *   written (read-only mount, full disk), `warn` is told once and the run goes on unrecorded: a
 *   read-only diagnosis is worth more at 3 AM than its record.
 * - `commit` (a destructive step's intent) is written and fsynced or throws a TranscriptError:
 *   the caller does nothing destructive without it. Once the record is broken, commit refuses.
 *
 * A path that cannot exist (its parent is a file, under /proc, a FIFO) is a usage error at once.
 *
 * What was decided or done is fsynced at once (the file, and a new file's directory entry with
 * it), to survive the machine itself; the start of the run and read-only evidence ride along with
 * the next fsync. An fsync per evidence line cost 3–40 ms per diagnose here.
 */
const DURABLE_EVENTS = new Set<TranscriptEvent['type']>([
  'prompt',
  'intent',
  'outcome',
  'change.intent',
  'change.outcome',
  'action',
  'manual',
  'note',
  'session.end',
]);

export interface TranscriptOptions {
  now?: () => Date;
  /** Told once, with the reason, when from then on nothing is being recorded. */
  warn?: (message: string) => void;
}

export function openTranscript(
  path: string,
  incident: string,
  opts: TranscriptOptions = {},
): Transcript {
  const now = opts.now ?? (() => new Date());
  const run = randomBytes(4).toString('hex');
  let broken: string | undefined;
  let fd: number | undefined;
  let dirSynced = true;
  try {
    const opened = openForAppend(path);
    fd = opened.fd;
    dirSynced = !opened.created;
  } catch (err) {
    if (!(err instanceof Unwritable)) throw err;
    broken = err.message;
  }
  let ended = false;
  let endedWith: number | undefined;

  const stopRecording = (reason: string) => {
    broken = reason;
    opts.warn?.(`cannot write transcript ${path}: ${reason}; nothing more is being recorded`);
  };
  if (broken) opts.warn?.(`cannot open transcript ${path}: ${broken}; nothing is being recorded`);

  /** Writes one event; throws the reason it could not (then nothing of it is left in the file). */
  const write = (event: TranscriptEvent, durable: boolean): void => {
    if (fd === undefined || broken) throw new Error(broken ?? 'not open');
    // The writer owns ts, incident and run, and puts them first for a reader of the raw file.
    const stamped: Record<string, unknown> = {
      type: event.type,
      ts: now().toISOString(),
      incident,
      run,
    };
    for (const [k, v] of Object.entries(event)) if (!(k in stamped)) stamped[k] = v;
    const record = toJson(stamped);
    const line = Buffer.from(JSON.stringify(sanitizeValue(redactValue(record))) + '\n', 'utf8');
    appendLine(fd, line);
    if (durable) {
      fs.fsyncSync(fd);
      if (!dirSynced) {
        fsyncDir(dirname(path));
        dirSynced = true;
      }
    }
  };

  return {
    path,
    incident,
    get unrecorded() {
      return broken;
    },
    get exitCode() {
      return endedWith;
    },
    append(event) {
      if (ended || broken) return;
      try {
        write(event, DURABLE_EVENTS.has(event.type));
      } catch (err) {
        stopRecording(messageOf(err));
      }
    },
    commit(event) {
      if (ended) throw new TranscriptError(`transcript ${path} is already closed`);
      try {
        write(event, true);
      } catch (err) {
        const reason = broken ?? messageOf(err);
        if (!broken) broken = reason; // the caller reports it: no second warning
        throw new TranscriptError(`cannot write transcript ${path}: ${reason}`, { cause: err });
      }
    },
    end(status, exitCode) {
      if (ended) return;
      ended = true;
      endedWith = exitCode;
      // end() runs from the top-level error handler: a failure here must not replace the error
      // being reported, and there is nothing better to do with it.
      if (!broken) {
        try {
          write({ type: 'session.end', status, exitCode }, true);
        } catch {
          /* the disk is gone */
        }
      }
      try {
        if (fd !== undefined) fs.closeSync(fd);
      } catch {
        /* see above */
      }
    },
  };
}

/** The transcript cannot be written now (read-only, full, no permission): the run may go on. */
class Unwritable extends Error {}

/** Errors of a place that exists but takes no writes now, as opposed to a path that cannot exist. */
const UNWRITABLE = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'EIO']);

/** The file open for appending, and whether it is new (its directory entry not yet synced). */
function openForAppend(path: string): { fd: number; created: boolean } {
  let fd: number;
  let existed: boolean;
  try {
    const madeDir = makeParents(dirname(path));
    existed = !madeDir && fs.existsSync(path);
    fd = fs.openSync(path, 'a+', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (UNWRITABLE.has(code)) throw new Unwritable(messageOf(err));
    throw new TranscriptError(`cannot open transcript ${path}: ${messageOf(err)}`, { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    // A FIFO or socket would block a write (and with it Ctrl-C) until someone reads it.
    if (st.isFIFO() || st.isSocket()) {
      throw new TranscriptError(`cannot open transcript ${path}: not a regular file`);
    }
    if (st.isFile() && (st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
    // A crash in the middle of a write leaves a line without its newline; end it, so the next
    // event starts on a line of its own and only the torn line is unreadable.
    if (st.size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, st.size - 1);
      if (last[0] !== 0x0a) appendLine(fd, Buffer.from('\n'));
    }
  } catch (err) {
    fs.closeSync(fd);
    if (err instanceof TranscriptError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (UNWRITABLE.has(code)) throw new Unwritable(messageOf(err));
    throw new TranscriptError(`cannot open transcript ${path}: ${messageOf(err)}`, { cause: err });
  }
  return { fd, created: !existed };
}

/**
 * `mkdir -p` that ends. Node's `mkdirSync(dir, { recursive: true })` (20.x) loops forever, in one
 * synchronous call that no Ctrl-C can interrupt, where mkdir answers ENOENT although the parent
 * exists (procfs, sysfs: `/proc/x`): it creates the parent (EEXIST), retries the child (ENOENT),
 * and again. Here each level is made once, top down; ENOENT after its parent exists is final.
 * Returns whether a directory was made.
 */
function makeParents(dir: string): boolean {
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    try {
      if (!fs.statSync(at).isDirectory()) {
        throw Object.assign(
          new Error(`ENOTDIR: not a directory, mkdir '${dir}' (${at} is a file)`),
          {
            code: 'ENOTDIR',
          },
        );
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(at);
      const parent = dirname(at);
      if (parent === at) break;
      at = parent;
    }
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      // Made by a concurrent run of the same incident in between: fine.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) {
        throw err;
      }
    }
  }
  return missing.length > 0;
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

/**
 * Appends one line in one `write`. A write cut short (a full disk) is taken back, so no torn line
 * is left for the next event to follow: the file is cut to where it was, if no other writer has
 * appended since (with one, the torn line stays and the reader reports it).
 */
function appendLine(fd: number, buf: Buffer): void {
  const start = fs.fstatSync(fd).size;
  let off = 0;
  try {
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
  } catch (err) {
    if (off > 0) {
      try {
        if (fs.fstatSync(fd).size === start + off) fs.ftruncateSync(fd, start);
      } catch {
        /* the error below says enough */
      }
    }
    throw err;
  }
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
 * Reads a transcript, each line normalised to its typed event (normalize.ts: older files read,
 * a type this version does not know is kept as `unknown`). A last line without its newline that does not parse is a write torn by a
 * crash and is skipped. Any other bad line throws a `TranscriptError` naming the path and line
 * numbers, unless `onBadLine` is given: then it is told, and reading goes on.
 */
export function readTranscript(
  path: string,
  opts: { onBadLine?: (line: number, reason: string) => void } = {},
): RecordedEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new TranscriptError(`cannot read transcript ${path}: ${messageOf(err)}`, { cause: err });
  }
  const lines = text.split('\n');
  const torn = lines.length - 1; // index of the text after the last newline ('' if none)
  const events: RecordedEvent[] = [];
  const bad: string[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let reason: string;
    try {
      const v: unknown = JSON.parse(line);
      if (isEvent(v)) {
        events.push(normalizeEvent(v));
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

function isEvent(v: unknown): v is Record<string, unknown> & { type: string } {
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
  let events: RecordedEvent[];
  try {
    events = readTranscript(path, { onBadLine: () => {} });
  } catch {
    return summary;
  }
  const first = events[0];
  if (first?.ts) summary.started = first.ts;
  if (first?.incident) summary.incident = first.incident;
  const commands: string[] = [];
  summary.status = events.length === 0 ? 'empty' : 'incomplete';
  for (const e of events) {
    if (e.type === 'session.start') {
      commands.push(e.command);
      summary.status = 'incomplete';
      summary.exitCode = null;
    } else if (e.type === 'session.end') {
      summary.status = e.status;
      summary.exitCode = e.exitCode;
    }
  }
  summary.command = commands.join(', ');
  return summary;
}
