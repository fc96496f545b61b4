/**
 * `poolctl runbooks list | show ID | validate [PATH…]`: what the bundled runbooks contain, and
 * whether a runbook file (a new one, or an edited bundled source) is valid before anyone relies on
 * it at 3 AM.
 */
import path from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { bundledRunbooks, loadRunbookById } from '../runbook/bundled.js';
import { formatDuration, parseDuration } from '../runbook/params.js';
import type { FindingRule, Runbook, RowCondition, Step } from '../runbook/types.js';

export interface RunbooksOptions {
  sub: 'list' | 'show' | 'validate';
  /** `show`: a bundled id or the path of a YAML file. */
  id?: string;
  /** `validate`: files or directories; none = the bundled sources under runbooks/. */
  paths: string[];
  output: 'human' | 'json';
}

export interface RunbooksFlags {
  output?: string;
  /** The subcommand and its arguments, when commander's subcommands hand them over as flags. */
  action?: string;
  id?: string;
  paths?: string[];
}

/** Where text goes: `out` is stdout (the result), `err` stderr. Each call passes whole lines, `\n` included. */
export interface RunbooksDeps {
  out: (s: string) => void;
  err: (s: string) => void;
}

const PHASES = ['diagnose', 'actions', 'verify', 'prevent'] as const;

/**
 * `args` are the positional words after `runbooks`: `['show', 'postgres/pool-exhausted']`; without
 * them they come from `flags.action`, `flags.id` and `flags.paths`.
 */
export function parseRunbooksOptions(
  flags: RunbooksFlags,
  args?: readonly string[],
): RunbooksOptions {
  args ??= [
    ...(flags.action ? [flags.action] : []),
    ...(flags.id !== undefined ? [flags.id] : []),
    ...(flags.paths ?? []),
  ];
  const output = flags.output ?? 'human';
  if (output !== 'human' && output !== 'json')
    throw new UsageError(`--output ${output}: expected human or json`);
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
      if (rest.length) throw new UsageError(`runbooks list: unexpected argument "${rest[0]}"`);
      return { sub, paths: [], output };
    case 'show':
      if (rest.length !== 1)
        throw new UsageError(
          'runbooks show: expected one runbook id or file, e.g. postgres/pool-exhausted',
        );
      return { sub, id: rest[0], paths: [], output };
    case 'validate':
      return { sub, paths: [...rest], output };
    default:
      throw new UsageError(
        `runbooks${sub ? ` ${sub}` : ''}: expected list, show ID or validate [PATH...]`,
      );
  }
}

export async function runRunbooks(opts: RunbooksOptions, deps: RunbooksDeps): Promise<number> {
  if (opts.sub === 'list') return list(opts, deps);
  if (opts.sub === 'show') return show(opts, deps);
  return validate(opts, deps);
}

function counts(rb: Runbook): Record<(typeof PHASES)[number], number> {
  return {
    diagnose: rb.diagnose.length,
    actions: rb.actions.length,
    verify: rb.verify.length,
    prevent: rb.prevent.length,
  };
}

function list(opts: RunbooksOptions, deps: RunbooksDeps): number {
  const runbooks = bundledRunbooks();
  if (opts.output === 'json') {
    const doc = runbooks.map((rb) => ({
      id: rb.id,
      engine: rb.engine,
      title: rb.title,
      steps: counts(rb),
    }));
    deps.out(`${JSON.stringify({ runbooks: doc }, null, 2)}\n`);
    return ExitCode.ok;
  }
  const rows = runbooks.map((rb) => {
    const c = counts(rb);
    return [
      rb.id,
      rb.engine,
      String(c.diagnose),
      String(c.actions),
      String(c.verify),
      String(c.prevent),
      rb.title,
    ];
  });
  deps.out(
    `${columns([['ID', 'ENGINE', 'DIAGNOSE', 'ACTIONS', 'VERIFY', 'PREVENT', 'TITLE'], ...rows])}\n`,
  );
  return ExitCode.ok;
}

async function show(opts: RunbooksOptions, deps: RunbooksDeps): Promise<number> {
  const rb = await loadRunbookById(opts.id!);
  if (opts.output === 'json') {
    deps.out(`${JSON.stringify({ runbook: rb }, null, 2)}\n`);
    return ExitCode.ok;
  }
  const lines = [`${rb.id}: ${rb.title}`, `engine: ${rb.engine}   origin: ${rb.origin}`];
  if (rb.sources.length) lines.push(`sources: ${rb.sources.join(', ')}`);
  const params = Object.entries(rb.parameters);
  if (params.length) {
    lines.push('', 'Parameters (change one with --set name=value)');
    const rows = params.map(([name, p]) => [
      name,
      p.type,
      p.default === undefined ? '-' : showDefault(p.type, p.default),
      p.description,
    ]);
    lines.push(indent(columns(rows), '  '));
  }
  for (const phase of PHASES) {
    if (!rb[phase].length) continue;
    lines.push('', `${phase[0]!.toUpperCase()}${phase.slice(1)}`);
    rb[phase].forEach((step, i) => lines.push(...describeStep(step, i + 1)));
  }
  if (rb.escalation) {
    // Named by verify, mitigate and diagnose when the state stays critical after the mitigation.
    lines.push('', 'Escalation (when still critical after the mitigation)');
    for (const l of rb.escalation.levels)
      lines.push(`  ${l.severity}: ${l.team} within ${l.response_time} (${l.contact})`);
    if (rb.escalation.channels.length)
      lines.push(`  channels: ${rb.escalation.channels.join(', ')}`);
  }
  deps.out(`${lines.join('\n')}\n`);
  return ExitCode.ok;
}

function showDefault(type: string, value: string): string {
  // `90` reads as a percent only with its sign; `1h30m` is clearer than `90m`.
  if (type === 'percent') return `${value}%`;
  if (type === 'duration') return formatDuration(parseDuration(value));
  return value;
}

function describeStep(step: Step, n: number): string[] {
  const out = [`  ${n}. ${step.id} [${step.kind}] ${step.title}`, `     why: ${step.why}`];
  if (step.source) out.push(`     source: ${step.source}`);
  switch (step.kind) {
    case 'query':
    case 'terminate': {
      const extra =
        step.kind === 'terminate' ? `, mode: ${step.mode}` : step.metrics ? ', metrics' : '';
      if (step.kind === 'terminate') out.push(`     summary: ${step.summary}`);
      out.push(`     sql: ${step.sqlFile} (params: ${step.params.join(', ') || 'none'}${extra})`);
      out.push(indent(step.sql.trimEnd(), '       '));
      break;
    }
    case 'promql':
      out.push(`     promql${step.range ? ` over ${step.range}` : ''}: ${step.query}`);
      if (step.columns) out.push(`     columns: ${step.columns.join(', ')}`);
      break;
    case 'kubectl': {
      const filters = [
        step.grep ? `lines matching ${step.grep}` : '',
        step.tail ? `last ${step.tail}` : '',
      ].filter(Boolean);
      out.push(
        `     command: kubectl ${step.args.join(' ')}${filters.length ? `   (${filters.join(', ')})` : ''}`,
      );
      break;
    }
    case 'change':
      out.push(`     summary: ${step.summary}`, `     target: ${step.target}`);
      if (step.target === 'kubernetes') {
        for (const c of step.commands) out.push(`     command: kubectl ${c.join(' ')}`);
        if (step.wait) out.push(`     wait: kubectl ${step.wait.join(' ')}`);
      } else {
        out.push(`     sql: ${step.sqlFile} (params: ${step.params.join(', ') || 'none'})`);
        out.push(indent(step.sql.trimEnd(), '       '));
        const args = step.readArgs.length ? ` (args: ${step.readArgs.join(', ')})` : '';
        out.push(`     read: ${step.readFile}${args}`);
        out.push(indent(step.readSql.trimEnd(), '       '));
      }
      break;
    case 'manual':
      if (step.summary) out.push(`     summary: ${step.summary}`);
      for (const c of step.commands) out.push(`     command: ${c.join(' ')}`);
      if (step.note) out.push(`     note: ${step.note}`);
      break;
  }
  if (step.findings.length) {
    out.push('     findings:');
    for (const f of step.findings) out.push(`       ${describeFinding(f)}`);
  }
  return out;
}

function describeFinding(f: FindingRule): string {
  const conds = f.when === undefined ? [] : Array.isArray(f.when) ? f.when : [f.when];
  const cond = (c: RowCondition) =>
    `${c.column} ${c.op} ${c.param !== undefined ? `{${c.param}}` : JSON.stringify(c.value)}`;
  const when = conds.length ? `when ${conds.map(cond).join(' and ')}` : 'when any row';
  const count = f.count ? `, count ${f.count.op} ${f.count.value}` : '';
  const suggest = f.suggest.length ? ` -> ${f.suggest.join(', ')}` : '';
  return `${f.severity} ${f.id} (${when}${count}): ${f.message}${suggest}`;
}

async function validate(opts: RunbooksOptions, deps: RunbooksDeps): Promise<number> {
  const loader = await import('../runbook/loader.js');
  const bundled = opts.paths.length === 0;
  const files = bundled
    ? (await loader.findRunbookSources(loader.BUNDLED_SOURCES_DIR).catch(() => [])).map(displayPath)
    : await loader.expandRunbookPaths(opts.paths);
  if (bundled && files.length === 0) {
    throw new UsageError(
      `runbooks validate: no runbook sources in ${displayPath(loader.BUNDLED_SOURCES_DIR)}; name the files to validate`,
    );
  }
  if (files.length === 0)
    throw new UsageError(`runbooks validate: no .yaml files in ${opts.paths.join(', ')}`);
  const results = await loader.validateRunbookFiles(files, { bundled });
  const failed = results.filter((r) => !r.ok).length;
  if (opts.output === 'json') {
    const doc = {
      ok: failed === 0,
      files: results.map((r) => ({ file: r.file, ok: r.ok, id: r.runbook?.id, errors: r.errors })),
    };
    deps.out(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    deps.out(
      results
        .flatMap((r) => (r.ok ? [`ok ${r.file}`] : r.errors))
        .map((l) => `${l}\n`)
        .join(''),
    );
    if (failed)
      deps.err(
        `${failed} of ${results.length} runbook${results.length === 1 ? '' : 's'} invalid\n`,
      );
  }
  return failed ? ExitCode.usage : ExitCode.ok;
}

/** Relative to the working directory when inside it, as a user would type it. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((l) => (l ? prefix + l : l))
    .join('\n');
}

/** Plain aligned columns (no box characters); the last column is not padded. */
function columns(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '),
    )
    .join('\n');
}
