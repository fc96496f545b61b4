/**
 * A step as the operator runs it by hand: its command with the real parameter values, quoted for
 * the shell, and what is unknown left visibly open (`<PROMETHEUS_URL>`) rather than guessed. Used
 * for steps whose target poolctl does not have and for manual steps. On the diagnose path: imports
 * nothing heavier than the parameter helpers.
 */
import { formatDuration } from './params.js';
import type { ParameterSpec, ParameterValues, Step } from './types.js';

/** What poolctl knows about the targets it does not run the step on. */
export interface KnownTargets {
  /** The Prometheus base URL, when one was given. */
  prometheusUrl?: string;
  /** kubectl's argv for the given arguments (binary, context and namespace flags), when known. */
  kubectlArgv?: (args: string[]) => string[];
}

export interface ByHandCommand {
  /** Shell lines, each pasteable on its own; a `# …` line is a comment for the operator. */
  lines: string[];
  /** The flag that would let poolctl run this step itself (absent when there is none). */
  flag?: string;
}

/** An unknown value, visibly open: `{namespace}` unset → `<NAMESPACE>`. */
export function openValue(name: string): string {
  return `<${name.toUpperCase()}>`;
}

function valueText(
  name: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): string | undefined {
  const value = Object.hasOwn(values, name) ? values[name] : undefined;
  if (value === undefined) return undefined;
  if (specs[name]?.type === 'duration' && typeof value === 'number') return formatDuration(value);
  return String(value);
}

/** `{param}` → its value (durations as `5m`); an unset parameter → `<PARAM>`; others untouched. */
function renderText(
  text: string,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): string {
  return text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    if (!Object.hasOwn(specs, name)) return whole;
    return valueText(name, values, specs) ?? openValue(name);
  });
}

/** {param} → the value (durations as 5m etc.); unset optional → `<PARAM_NAME>`, visibly open. */
export function renderArgs(
  args: string[],
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
): string[] {
  return args.map((a) => renderText(a, values, specs));
}

/** `--to-revision={revision}`: a flag whose whole value is one parameter. */
const OPTIONAL_FLAG = /^--[A-Za-z][A-Za-z0-9-]*=\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/**
 * The arguments without the optional flags whose parameter has no value: `rollout undo
 * deployment/api --to-revision={revision}` is `rollout undo deployment/api` (kubectl's own
 * default, the previous revision) until `--set revision=N` is given. A parameter with no value
 * anywhere else stays, and renders as `<PARAM>`.
 */
export function withoutUnsetFlags(args: string[], hasValue: (name: string) => boolean): string[] {
  return args.filter((arg) => {
    const flag = OPTIONAL_FLAG.exec(arg);
    return !flag || hasValue(flag[1]!);
  });
}

// Characters no POSIX shell, bash or zsh treats specially inside a word.
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * One argument for a POSIX shell: as is when it has nothing special, else in single quotes (a `'`
 * inside becomes `'\''`). Single quotes turn off every expansion, `$(…)`, `;` and `<X>` included,
 * so a `<PLACEHOLDER>` pasted unchanged reaches the program as text and fails there, loudly,
 * instead of being read as a redirection from a file named PLACEHOLDER.
 *
 * Five lines rather than the shell-quote package: its quote() escapes with backslashes, which
 * turns `<NAMESPACE>` into `\<NAMESPACE\>`, harder to read and to replace.
 */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (SAFE_WORD.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One shell line, every element quoted as needed. */
export function shellLine(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** A SQL literal for the operator's psql or mysql: numbers as they are, text in single quotes. */
function sqlLiteral(value: string | number | undefined, name: string): string {
  if (value === undefined) return openValue(name);
  if (typeof value === 'number') return String(value);
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The statement on one line with its bound parameters written in as literals, for the operator to
 * paste into psql or mysql (poolctl itself always binds them). Comment lines are dropped.
 */
function inlineSql(sql: string, params: string[], values: ParameterValues): string {
  const literal = (i: number) => {
    const name = params[i];
    return name === undefined ? '?' : sqlLiteral(values[name], name);
  };
  const oneLine = sql
    .split('\n')
    .filter((l) => !/^\s*--/.test(l))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (/\$\d/.test(oneLine))
    return oneLine.replace(/\$(\d+)/g, (_, n: string) => literal(Number(n) - 1));
  let i = 0;
  return oneLine.replace(/\?/g, () => literal(i++));
}

/** By hand: the command an operator runs for a step whose target poolctl does not have. */
export function byHandCommand(
  step: Step,
  values: ParameterValues,
  specs: Record<string, ParameterSpec>,
  known: KnownTargets = {},
): ByHandCommand {
  const kubectl = (args: string[]) => {
    const rendered = renderArgs(args, values, specs);
    return shellLine(known.kubectlArgv ? known.kubectlArgv(rendered) : ['kubectl', ...rendered]);
  };
  switch (step.kind) {
    case 'promql': {
      const base = (known.prometheusUrl ?? openValue('prometheus_url')).replace(/\/+$/, '');
      if (step.queries) {
        // One query per column; the rows join on the `by` label.
        const lines = Object.entries(step.queries).map(([column, text]) =>
          shellLine([
            'curl',
            '-sG',
            `${base}/api/v1/query`,
            '--data-urlencode',
            `query=${renderText(text, values, specs)}`,
          ]).concat(`  # ${column}`),
        );
        return known.prometheusUrl ? { lines } : { lines, flag: '--prometheus URL' };
      }
      const query = renderText(step.query ?? '', values, specs);
      const argv = ['curl', '-sG', `${base}/api/v1/${step.range ? 'query_range' : 'query'}`];
      argv.push('--data-urlencode', `query=${query}`);
      const lines: string[] = [];
      if (step.range) {
        argv.push('--data-urlencode', `start=${openValue('start')}`);
        argv.push('--data-urlencode', `end=${openValue('end')}`);
        argv.push('--data-urlencode', 'step=60s');
        lines.push(
          shellLine(argv),
          `# START and END: the last ${renderText(step.range, values, specs)}, in Unix seconds`,
        );
      } else {
        lines.push(shellLine(argv));
      }
      return known.prometheusUrl ? { lines } : { lines, flag: '--prometheus URL' };
    }
    case 'kubectl': {
      let line = kubectl(step.args);
      // By hand, the log patterns are one grep (poolctl counts them per pod itself).
      const grep = step.parse === 'logs' ? Object.values(step.patterns ?? {}).join('|') : step.grep;
      if (grep !== undefined) line += ` | grep -iE ${shellQuote(grep)}`;
      if (step.tail !== undefined && step.parse === undefined) line += ` | tail -n ${step.tail}`;
      return known.kubectlArgv
        ? { lines: [line] }
        : { lines: [line], flag: '--kubectl PATH / --kube-context NAME' };
    }
    case 'change': {
      if (step.target === 'database') {
        return { lines: [inlineSql(step.sql, step.params, values)] };
      }
      const set = (name: string) => values[name] !== undefined;
      const lines = step.commands.map((c) => kubectl(withoutUnsetFlags(c, set)));
      if (step.wait) lines.push(kubectl(step.wait));
      return known.kubectlArgv ? { lines } : { lines, flag: '--kube-context NAME' };
    }
    case 'manual': {
      const lines = step.commands.map((c) => shellLine(renderArgs(c, values, specs)));
      if (step.note) lines.push(`# ${renderText(step.note, values, specs)}`);
      return { lines };
    }
    case 'query':
    case 'terminate':
      return { lines: [inlineSql(step.sql, step.params, values)] };
  }
}

/** The parameters a step uses: its bound `params` and every `{name}` in what it runs. */
export function parametersOf(step: Step): string[] {
  const texts: string[] = [];
  if (step.kind === 'promql') texts.push(step.query ?? '', ...Object.values(step.queries ?? {}));
  if (step.kind === 'kubectl') texts.push(...step.args);
  if (step.kind === 'manual') texts.push(...step.commands.flat());
  if (step.kind === 'change' && step.target === 'kubernetes')
    texts.push(...step.commands.flat(), ...(step.wait ?? []));
  const used = new Set('params' in step ? step.params : []);
  for (const text of texts)
    for (const [, name] of text.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) used.add(name!);
  return [...used];
}
