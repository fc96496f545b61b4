/**
 * Reads a YAML runbook and the SQL files beside it, validates it, and reports every problem on one
 * line of its own: `file:line: field.path: what was expected (got what)`. Used by `runbooks
 * validate`, `--runbook path.yaml` and the build; a bundled diagnose never loads this module.
 */
import { isStatementTemplate, templateProblems } from './statement-template.js';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineOf } from '../engines.js';
import { UsageError } from '../errors.js';
import { assemble, isRecord, issueLine, readSource, reason } from './include.js';
import {
  formatPath,
  parseRunbookDocument,
  PHASES,
  type Issue,
  type RunbookDocument,
} from './schema.js';
import type { Engine, Runbook } from './types.js';

/** The outcome of checking one runbook file; `errors` are complete one-line messages. */
export interface RunbookFileResult {
  /** The file as the caller named it. */
  file: string;
  ok: boolean;
  runbook?: Runbook;
  errors: string[];
}

export interface CheckOptions {
  /**
   * The file is one of the bundled sources (`runbooks/<engine>/<name>.yaml`): its id must be
   * `<engine>/<name>`, so ids are unique and `runbooks show ID` finds the file.
   */
  bundled?: boolean;
}

/** The bundled YAML sources, `runbooks/` of the package (from src/runbook or dist/runbook). */
export const BUNDLED_SOURCES_DIR = fileURLToPath(new URL('../../runbooks/', import.meta.url));

/** Loads and validates a runbook file; any problem is a UsageError listing them all. */
export async function loadRunbookFile(file: string, options: CheckOptions = {}): Promise<Runbook> {
  const result = await checkRunbookFile(file, options);
  if (!result.runbook) throw new UsageError(result.errors.join('\n'));
  return result.runbook;
}

/** Checks each file; never throws for a problem in a file. */
export function validateRunbookFiles(
  files: readonly string[],
  options: CheckOptions = {},
): Promise<RunbookFileResult[]> {
  return Promise.all(files.map((f) => checkRunbookFile(f, options)));
}

/**
 * The folder of parts that runbooks include (`include: [../shared/application.yaml]`): they are no
 * runbooks of their own, and are checked through each runbook that includes them.
 */
export const SHARED_DIR = 'shared';

/**
 * Every `*.yaml` directly in `dir` and one level down (`<engine>/<name>.yaml`), sorted; the
 * `shared/` folder of included parts is left out.
 */
export async function findRunbookSources(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isFile() && /\.ya?ml$/.test(entry.name)) found.push(full);
    if (entry.isDirectory() && entry.name !== SHARED_DIR) {
      for (const sub of await readdir(full, { withFileTypes: true })) {
        if (sub.isFile() && /\.ya?ml$/.test(sub.name)) found.push(path.join(full, sub.name));
      }
    }
  }
  return found.sort();
}

/** Files stay as given; a directory stands for the runbooks in it. */
export async function expandRunbookPaths(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    out.push(...(s?.isDirectory() ? await findRunbookSources(p) : [p]));
  }
  return out;
}

export async function checkRunbookFile(
  file: string,
  options: CheckOptions = {},
): Promise<RunbookFileResult> {
  const fail = (errors: string[]): RunbookFileResult => ({ file, ok: false, errors });
  const read = await readSource(file, (why) => `${file}: cannot read the runbook: ${why}`);
  if (!read.source) return fail(read.errors);
  const root = read.source;

  // A mapping may include shared parts; anything else is the schema's to describe.
  const assembled = isRecord(root.value) ? await assemble(root) : undefined;
  if (assembled && !assembled.data) return fail(assembled.errors);
  const locate = (p: readonly (string | number)[]) =>
    assembled ? assembled.locate(p) : { source: root, path: [...p] };
  const sources = [root.file];
  const format = (issues: Issue[]) =>
    issues
      .map((i) => {
        const at = locate(i.path);
        if (!sources.includes(at.source.file)) sources.push(at.source.file);
        return { ...issueLine(at.source, { ...i, path: at.path }), file: at.source.file };
      })
      // The runbook's own problems first, then each included file's, each by line.
      .sort((a, b) => sources.indexOf(a.file) - sources.indexOf(b.file) || a.line - b.line)
      .map((i) => i.text);

  // With included parts, "first used at" names the file and line: a path alone could be read as
  // one in the file the message is about.
  const included = Array.isArray(root.data.include) && root.data.include.length > 0;
  const describePath = (p: (string | number)[]) => {
    if (!included) return formatPath(p);
    const at = locate(p);
    return issueLine(at.source, { path: at.path, message: '' }).text.replace(/: $/, '');
  };
  const parsed = parseRunbookDocument(assembled ? assembled.data : root.value, describePath);
  if (!parsed.runbook) return fail(format(parsed.issues));
  const rb = parsed.runbook;

  const issues: Issue[] = [];
  if (options.bundled) {
    const expected = `${path.basename(path.dirname(file))}/${path.basename(file).replace(/\.ya?ml$/, '')}`;
    if (rb.id !== expected) {
      issues.push({
        path: ['id'],
        message: `expected "${expected}", the file's place under runbooks/ (got "${rb.id}")`,
      });
    }
  }
  // A step's SQL files sit next to the file the step is written in.
  issues.push(...(await readSql(rb, (p) => path.dirname(locate(p).source.file))));
  if (issues.length) return fail(format(issues));
  return { file, ok: true, runbook: { ...rb, origin: path.resolve(file) }, errors: [] };
}

/**
 * Fills each SQL step's text from its file (query, terminate, a database change and its read) and
 * checks its placeholders against `params`.
 */
async function readSql(
  rb: RunbookDocument,
  dirOf: (stepPath: (string | number)[]) => string,
): Promise<Issue[]> {
  const issues: Issue[] = [];
  const read = async (
    at: (string | number)[],
    file: string,
    params: string[],
    listKey: 'params' | 'readArgs',
  ): Promise<string | undefined> => {
    const where = path.join(dirOf(at), file);
    // A read's readArgs are optional: a problem is shown on its `read:` line.
    const listPath = listKey === 'params' ? [...at.slice(0, -1), listKey] : at;
    let sql: string;
    try {
      sql = await readFile(where, 'utf8');
    } catch (err) {
      issues.push({ path: at, message: `cannot read ${where}: ${reason(err)}` });
      return undefined;
    }
    if (sql.trim() === '') {
      issues.push({ path: at, message: `${where} is empty` });
      return undefined;
    }
    // A statement that cannot bind (ALTER DATABASE): `{database}` and `{param_ms}` instead.
    if (isStatementTemplate(sql)) {
      for (const problem of templateProblems(sql, params))
        issues.push({
          path: listPath,
          message: `${file}: ${problem}`,
        });
      return sql;
    }
    const used = placeholderCount(rb.engine, sql);
    if (used !== params.length) {
      const plural = used === 1 ? '' : 's';
      const style =
        engineOf(rb.engine).placeholders === 'numbered'
          ? used > 1
            ? `$1..$${used}`
            : used
              ? '$1'
              : 'no $n placeholders'
          : `${used} ? placeholder${plural}`;
      const listed = params.length ? `${params.length} (${params.join(', ')})` : 'none';
      issues.push({
        path: listPath,
        message: `${file} uses ${style}, but ${listKey} lists ${listed}`,
      });
    }
    return sql;
  };
  for (const phase of PHASES) {
    for (const [i, step] of rb[phase].entries()) {
      if (step.kind === 'query' || step.kind === 'terminate') {
        step.sql = (await read([phase, i, 'sql'], step.sqlFile, step.params, 'params')) ?? '';
      } else if (step.kind === 'change' && step.target === 'database') {
        step.sql = (await read([phase, i, 'sql'], step.sqlFile, step.params, 'params')) ?? '';
        step.readSql =
          (await read([phase, i, 'read'], step.readFile, step.readArgs, 'readArgs')) ?? '';
      }
    }
  }
  return issues;
}

/**
 * How many positional parameters the SQL expects, in the engine's style (src/engines.ts): the
 * highest `$n` (PostgreSQL's), or the count of `?` (MySQL's), outside comments, strings and quoted
 * names as that dialect writes them. A mismatch would otherwise fail at 3 AM with "bind message
 * supplies 1 parameters, but prepared statement requires 2".
 */
export function placeholderCount(engine: Engine, sql: string): number {
  if (engineOf(engine).placeholders === 'numbered') {
    const code = sql.replace(
      /--[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^']|'')*'|"(?:[^"]|"")*"|\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$/g,
      ' ',
    );
    let max = 0;
    for (const m of code.matchAll(/\$(\d+)/g)) max = Math.max(max, Number(m[1]));
    return max;
  }
  const code = sql.replace(
    /--\s[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`[^`]*`/g,
    ' ',
  );
  return (code.match(/\?/g) ?? []).length;
}
