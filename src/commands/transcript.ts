/**
 * `poolctl transcript list | show FILE|INCIDENT | export FILE|INCIDENT --format md|json|html
 * [-o OUT]`: the incident record a postmortem is written from. Reading only; never a target.
 */
import type { ChalkInstance } from 'chalk';
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { plainColumns } from '../io/render.js';
import { sanitizeInline } from '../io/sanitize.js';
import { findRunbook } from '../runbook/bundled.js';
import {
  EXPORT_FORMATS,
  buildIncident,
  toHtml,
  toJson,
  toMarkdown,
  type ExportFormat,
} from '../transcript/export/index.js';
import { renderTimeline } from '../transcript/export/terminal.js';
import { incidentsDir } from '../transcript/paths.js';
import type { RecordedEvent } from '../transcript/types.js';
import { TranscriptError, listTranscripts, readTranscript } from '../transcript/writer.js';
import { poolctlVersion } from '../version.js';

export interface TranscriptOptions {
  sub: 'list' | 'show' | 'export';
  /** `show`/`export`: a transcript file, or an incident id under the incidents directory. */
  source?: string;
  format: ExportFormat;
  /** `export -o OUT`: write here (mode 0600) instead of stdout. */
  outFile?: string;
  /** `list`: a table or one JSON document. */
  output: 'human' | 'json';
}

export interface TranscriptFlags {
  output?: string;
  format?: string;
  out?: string;
  /** The subcommand and its argument, as the commander wiring hands them over. */
  action?: string;
  source?: string;
}

/** Where text goes and what the terminal can do. `out` is the result, `err` warnings. */
export interface TranscriptDeps {
  out: (s: string) => void;
  err: (s: string) => void;
  env: Record<string, string | undefined>;
  /** Colour for `show` on a terminal; decided once by the IO. */
  style: ChalkInstance;
}

const BY_EXTENSION: Record<string, ExportFormat> = {
  '.md': 'md',
  '.markdown': 'md',
  '.json': 'json',
  '.html': 'html',
  '.htm': 'html',
};

export function parseTranscriptOptions(
  flags: TranscriptFlags,
  args?: readonly string[],
): TranscriptOptions {
  args ??= [...(flags.action ? [flags.action] : []), ...(flags.source ? [flags.source] : [])];
  const output = flags.output ?? 'human';
  if (output !== 'human' && output !== 'json')
    throw new UsageError(`--output ${output}: expected human or json`);
  // Without --format, -o report.html says html; otherwise Markdown, the postmortem's format.
  const inferred = flags.out ? BY_EXTENSION[extension(flags.out)] : undefined;
  const format = flags.format ?? inferred ?? 'md';
  if (!EXPORT_FORMATS.includes(format as ExportFormat))
    throw new UsageError(`--format ${format}: expected md, json or html`);
  const [sub, ...rest] = args;
  const base = { format: format as ExportFormat, output } as const;
  if (sub === 'list') {
    if (rest.length) throw new UsageError(`transcript list: unexpected argument "${rest[0]}"`);
    return { sub, ...base };
  }
  if (sub === 'show' || sub === 'export') {
    if (rest.length !== 1 || !rest[0])
      throw new UsageError(`transcript ${sub}: expected one transcript file or incident id`);
    if (sub === 'show' && flags.out) throw new UsageError('-o goes with transcript export');
    return { sub, source: rest[0], outFile: flags.out, ...base };
  }
  throw new UsageError(
    `transcript${sub ? ` ${sub}` : ''}: expected list, show FILE|INCIDENT or export FILE|INCIDENT`,
  );
}

export async function runTranscript(
  opts: TranscriptOptions,
  deps: TranscriptDeps,
): Promise<number> {
  if (opts.sub === 'list') return list(opts, deps);
  const path = resolveSource(opts.source!, deps.env);
  const { events, warnings } = load(path);
  for (const w of warnings) deps.err(`poolctl: warning: ${sanitizeInline(path)}: ${w}\n`);
  const report = buildIncident(events, {
    incident: basename(path, '.jsonl'),
    warnings,
    defaults: runbookDefaults,
  });
  // Runs that never ended are told once, with the rest of the warnings.
  for (const w of report.summary.warnings.slice(warnings.length))
    deps.err(`poolctl: warning: ${w}\n`);
  if (opts.sub === 'show') {
    deps.out(`${renderTimeline(report, deps.style, path)}\n`);
    return ExitCode.ok;
  }
  const ctx = { source: path, poolctl: poolctlVersion() };
  const text =
    opts.format === 'json'
      ? toJson(report, events)
      : opts.format === 'html'
        ? toHtml(report, ctx)
        : toMarkdown(report, ctx);
  if (opts.outFile) writePrivate(opts.outFile, text);
  else deps.out(text);
  return ExitCode.ok;
}

function list(opts: TranscriptOptions, deps: TranscriptDeps): number {
  const dir = incidentsDir(deps.env);
  const found = listTranscripts(dir);
  if (opts.output === 'json') {
    deps.out(`${JSON.stringify({ directory: dir, incidents: found }, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (found.length === 0) {
    deps.err(`poolctl: no transcripts in ${dir}\n`);
    return ExitCode.ok;
  }
  const rows = found.map((t) => [
    sanitizeInline(t.incident),
    t.started.slice(0, 19).replace('T', ' '),
    sanitizeInline(t.command) || '-',
    sanitizeInline(t.status),
    t.exitCode === null ? '-' : String(t.exitCode),
    t.path,
  ]);
  deps.out(
    `${plainColumns([['INCIDENT', 'STARTED (UTC)', 'COMMANDS', 'STATUS', 'EXIT', 'PATH'], ...rows])}\n`,
  );
  return ExitCode.ok;
}

/** A path to a file wins; otherwise an incident id names `<incidents>/<id>.jsonl`. */
export function resolveSource(source: string, env: Record<string, string | undefined>): string {
  const shown = JSON.stringify(sanitizeInline(source).slice(0, 200));
  if (fs.existsSync(source)) {
    if (!fs.statSync(source).isFile()) throw new UsageError(`transcript ${shown} is not a file`);
    return source;
  }
  const dir = incidentsDir(env);
  const isId = /^[A-Za-z0-9._-]{1,64}$/.test(source) && !/^\.+$/.test(source);
  const candidate = isId ? join(dir, source.endsWith('.jsonl') ? source : `${source}.jsonl`) : '';
  if (candidate && fs.existsSync(candidate)) return candidate;
  throw new UsageError(
    `no transcript ${shown}: no such file, and no incident of that id in ${dir} (see: poolctl transcript list)`,
  );
}

/**
 * Reads what can be read. A crash can tear the last line (the writer ends it with a newline when
 * the incident continues, so a torn write can also sit mid-file): those lines are skipped with a
 * warning, since a postmortem needs the rest more than it needs a perfect file.
 */
function load(path: string): { events: RecordedEvent[]; warnings: string[] } {
  const bad: string[] = [];
  const events = readTranscript(path, {
    onBadLine: (line, reason) => bad.push(`line ${line} skipped: ${sanitizeInline(reason)}`),
  });
  if (events.length === 0 && bad.length > 0)
    throw new TranscriptError(`${path}: not a poolctl transcript (${bad[0]})`);
  const warnings = bad.slice(0, MAX_BAD_LINES);
  if (bad.length > MAX_BAD_LINES)
    warnings.push(`${bad.length - MAX_BAD_LINES} more unreadable lines skipped`);
  const text = fs.readFileSync(path, 'utf8');
  const tail = text.slice(text.lastIndexOf('\n') + 1);
  if (tail.trim() !== '' && !parses(tail)) {
    warnings.push(
      `the last line is incomplete (a write torn by a crash?): skipped; the ${events.length} events before it are complete`,
    );
  }
  return { events, warnings };
}

const MAX_BAD_LINES = 5;

function parses(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

function runbookDefaults(id: string): Record<string, string | undefined> | undefined {
  try {
    const rb = findRunbook(id);
    return rb && Object.fromEntries(Object.entries(rb.parameters).map(([k, p]) => [k, p.default]));
  } catch {
    return undefined; // no bundled runbooks (a broken build): thresholds stay unknown
  }
}

/** Writes the export with mode 0600 (it holds evidence) by a rename, so no reader sees half. */
function writePrivate(out: string, text: string): void {
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, text);
      fs.fchmodSync(fd, 0o600); // whatever the umask did
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, out);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = WRITE_ERRORS[code] ?? (err as Error).message;
    throw new TranscriptError(`-o ${out}: cannot write the export: ${why}`, { cause: err });
  }
}

const WRITE_ERRORS: Record<string, string> = {
  ENOENT: 'no such directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
};

function extension(file: string): string {
  const name = basename(file).toLowerCase();
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot) : '';
}
