/**
 * Shared runbook parts: a runbook may `include:` files that hold parameters and steps only (no id,
 * title, engine or sources), e.g. `runbooks/shared/application.yaml` with everything on the
 * application's side, which is the same whatever the database engine. The loader merges them
 * before validation, and every problem found in the merged runbook is reported in the file and at
 * the line it came from.
 *
 * The merge, defined once:
 * - Steps: in each phase, the including file's own steps first, then each included file's steps,
 *   in `include:` order (an included file's own includes follow its steps, depth first). A runbook
 *   reads its server first and the application after, as the bundled ones do.
 * - Parameters: the including file wins. A parameter declared in both is merged key by key, so a
 *   runbook may override only the default of an included parameter (`read_service: { default:
 *   mysql-read }`) or redeclare it whole.
 * - `include:` paths are relative to the file that names them; a file that includes itself,
 *   directly or not, and a file that cannot be read are one-line errors at that `include:` entry.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { describeValue, formatPath, PHASES, type Issue } from './schema.js';
import type { Phase } from './types.js';

/** One YAML file of a runbook: the runbook itself or a part it includes. */
export interface Source {
  /** The file as shown in messages: as the caller named it, or joined to the includer's folder. */
  file: string;
  doc: Document;
  lines: LineCounter;
  /** The parsed YAML. */
  value: unknown;
  /** The parsed YAML when it is a mapping, else empty. */
  data: Record<string, unknown>;
}

/** Where a path of the merged runbook came from. */
export interface Located {
  source: Source;
  path: (string | number)[];
}

export interface Assembled {
  /** The merged document, without `include`, ready for the schema; absent when a file failed. */
  data?: Record<string, unknown>;
  /** Maps a path of the merged document to its file and the path inside it. */
  locate(docPath: readonly (string | number)[]): Located;
  /** One-line errors (file:line: path: message) found while reading and merging. */
  errors: string[];
}

const PART_KEYS = ['include', 'parameters', ...PHASES] as const;

type Step = Record<string, unknown>;
type Specs = Record<string, Record<string, unknown>>;

/** Reads and parses one YAML file; errors are complete lines. */
export async function readSource(
  file: string,
  cannotRead: (why: string) => string,
): Promise<{ source?: Source; errors: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { errors: [cannotRead(reason(err))] };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) {
    // One broken line often yields several parser errors; the first says the most.
    const byLine = new Map<number, string>();
    for (const e of doc.errors) {
      const line = e.linePos?.[0].line ?? lines.linePos(e.pos[0]).line;
      if (!byLine.has(line))
        byLine.set(line, `${file}:${line}: invalid YAML: ${e.message.split('\n')[0]}`);
    }
    return { errors: [...byLine.values()] };
  }
  const value: unknown = doc.toJS();
  return { source: { file, doc, lines, value, data: isRecord(value) ? value : {} }, errors: [] };
}

/** A problem at `docPath` of `source`, as one line. */
export function issueLine(source: Source, issue: Issue): { line: number; text: string } {
  const line = lineOf(source.doc, source.lines, issue.path);
  return { line, text: `${source.file}:${line}: ${formatPath(issue.path)}: ${issue.message}` };
}

/** Reads the runbook's includes, recursively, and merges them into the runbook's document. */
export async function assemble(root: Source): Promise<Assembled> {
  const errors: string[] = [];
  // Sources in merge order (the root first), each with the steps it brings.
  const order: Source[] = [];
  const visit = async (source: Source, stack: string[]): Promise<void> => {
    order.push(source);
    const include = source.data.include;
    if (include === undefined) return;
    if (!Array.isArray(include) || include.some((f) => typeof f !== 'string' || f.trim() === '')) {
      const got = describeValue(include);
      errors.push(
        issueLine(source, {
          path: ['include'],
          message: `expected a list of YAML file names relative to this file (got ${got})`,
        }).text,
      );
      return;
    }
    for (const [k, entry] of (include as string[]).entries()) {
      const file = path.normalize(path.join(path.dirname(source.file), entry));
      const at = (message: string) => issueLine(source, { path: ['include', k], message }).text;
      const key = path.resolve(file);
      if (stack.includes(key)) {
        const cycle = [...stack.slice(stack.indexOf(key)), key].map((f) =>
          path.relative(process.cwd(), f),
        );
        errors.push(at(`include cycle: ${cycle.join(' -> ')}`));
        continue;
      }
      const read = await readSource(file, (why) => at(`cannot read ${file}: ${why}`));
      errors.push(...read.errors);
      if (!read.source) continue;
      const stray = Object.keys(read.source.data).filter(
        (key) => !(PART_KEYS as readonly string[]).includes(key),
      );
      for (const key of stray) {
        errors.push(
          issueLine(read.source, {
            path: [key],
            message: `not allowed in an included file, which holds only ${PART_KEYS.join(', ')}`,
          }).text,
        );
      }
      if (stray.length) continue;
      await visit(read.source, [...stack, key]);
    }
  };
  await visit(root, [path.resolve(root.file)]);

  const stepOrigins = new Map<Phase, Located[]>();
  const merged: Record<string, unknown> = { ...root.data };
  delete merged.include;
  if (order.length > 1) {
    for (const phase of PHASES) {
      const steps: Step[] = [];
      const origins: Located[] = [];
      let usable = true;
      for (const source of order) {
        const list = source.data[phase];
        if (list === undefined) continue;
        if (!Array.isArray(list)) {
          // The root's own shape error is the schema's to report; an included one is reported here.
          if (source !== root)
            errors.push(
              issueLine(source, {
                path: [phase],
                message: `expected a list (got ${describeValue(list)})`,
              }).text,
            );
          usable = false;
          continue;
        }
        list.forEach((step, i) => {
          steps.push(step as Step);
          origins.push({ source, path: [phase, i] });
        });
      }
      if (!usable) continue;
      stepOrigins.set(phase, origins);
      if (steps.length || root.data[phase] !== undefined) merged[phase] = steps;
    }
    const specs: Specs = {};
    // The root wins: merge from the last included file up to the root.
    for (const source of [...order].reverse()) {
      const own = source.data.parameters;
      if (own === undefined) continue;
      if (!isRecord(own)) {
        if (source !== root)
          errors.push(
            issueLine(source, {
              path: ['parameters'],
              message: `expected a mapping (got ${describeValue(own)})`,
            }).text,
          );
        continue;
      }
      for (const [name, spec] of Object.entries(own)) {
        specs[name] =
          isRecord(spec) && isRecord(specs[name]) ? { ...specs[name], ...spec } : (spec as never);
      }
    }
    if (Object.keys(specs).length) merged.parameters = specs;
  }

  const locate = (docPath: readonly (string | number)[]): Located => {
    const [head, index, ...rest] = docPath;
    if (typeof head === 'string' && (PHASES as readonly string[]).includes(head)) {
      const origin =
        typeof index === 'number' ? stepOrigins.get(head as Phase)?.[index] : undefined;
      if (origin) return { source: origin.source, path: [...origin.path, ...rest] };
    }
    if (head === 'parameters' && typeof index === 'string') {
      // The file whose declaration gave this key (or the parameter, for a whole-entry problem).
      const declares = (s: Source) => {
        const spec = isRecord(s.data.parameters) ? s.data.parameters[index] : undefined;
        if (spec === undefined) return false;
        return rest.length === 0 || (isRecord(spec) && Object.hasOwn(spec, String(rest[0])));
      };
      const source =
        order.find(declares) ??
        order.find((s) => isRecord(s.data.parameters) && Object.hasOwn(s.data.parameters, index));
      if (source) return { source, path: [...docPath] };
    }
    return { source: root, path: [...docPath] };
  };

  return errors.length ? { locate, errors } : { data: merged, locate, errors };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return (err as Error).message;
}

/** The line of the YAML node at `path`: a mapping entry's key line, else the nearest parent's. */
function lineOf(doc: Document, lines: LineCounter, docPath: readonly (string | number)[]): number {
  let node: unknown = doc.contents;
  let offset = (node as { range?: [number] } | null)?.range?.[0] ?? 0;
  for (const key of docPath) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key),
      );
      if (!pair) break;
      offset = (pair.key as { range?: [number] }).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number' && node.items[key]) {
      node = node.items[key];
      offset = (node as { range?: [number] }).range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return lines.linePos(offset).line;
}
