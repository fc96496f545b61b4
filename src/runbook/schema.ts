/**
 * The YAML runbook format, as a zod schema that produces the `Runbook` type of `types.ts` (without
 * `origin`; `sql` is left empty for the loader to fill from `sqlFile`), plus the checks a schema
 * cannot express (ids unique, references resolve) and the wording of every problem as
 * `path: what was expected (got what)`. Loaded only by the loader and the build, never on diagnose.
 */
import { z } from 'zod';
import { ENGINE_IDS } from '../engines.js';
import { parseParameterValue } from './params.js';
import { KUBECTL_PARSERS, type ChangeStep, type Phase, type Runbook, type Step } from './types.js';

/** One problem in a runbook document: where (a path into the YAML) and what was expected. */
export interface Issue {
  path: (string | number)[];
  message: string;
}

/** What the schema produces: a runbook whose steps' `sql` the loader still has to read. */
export type RunbookDocument = Omit<Runbook, 'origin'>;

export const PHASES = ['diagnose', 'actions', 'verify', 'prevent'] as const;
export const STEP_KINDS = ['query', 'promql', 'kubectl', 'terminate', 'change', 'manual'] as const;

const text = z.string().trim().min(1, 'expected a non-empty string');
const oneLine = text.refine((s) => !s.includes('\n'), 'expected a single line of text');
const stepId = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    'expected a lowercase id like kill-idle (letters, digits, - and _)',
  );
const paramName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_]*$/,
    'expected a parameter name like kill_idle_after (lowercase letters, digits and _)',
  );
const sqlFile = z
  .string()
  .regex(
    /^[^/\\].*\.sql$/,
    'expected the name of a .sql file next to the runbook, like utilization.sql',
  );
/** YAML reads `default: 90` and `- 3` as numbers; they mean the same text. */
const scalarText = z.union([z.string(), z.number()]).transform(String);
const comparison = z.enum(['>', '>=', '<', '<=', '==', '!=']);
const duration = z.string().refine((s) => {
  try {
    parseParameterValue('duration', s, '');
    return true;
  } catch {
    return false;
  }
}, 'expected a duration like 30s, 5m or 1h');
/** A duration, or one `{param}` naming a duration parameter (crossCheck checks its type). */
const durationOrParam = z.union([
  duration,
  z
    .string()
    .regex(
      /^\{[A-Za-z_][A-Za-z0-9_]*\}$/,
      'expected a duration like 30s, 5m or 1h, or a {parameter}',
    ),
]);

const rowCondition = z.strictObject({
  column: text,
  op: comparison,
  value: z.union([z.number(), z.string()]).optional(),
  param: paramName.optional(),
});

const countCondition = z.strictObject({
  op: comparison,
  value: z.number(),
});

const conditions = z.union([
  rowCondition,
  z.array(rowCondition).min(1, 'expected at least one condition'),
]);

/** The row whose column stands out against the other rows' (the next one's, or their median). */
const standsOut = z.strictObject({
  column: text,
  against: z.enum(['next', 'median']),
  ratio: z.number().min(1, 'expected a ratio of at least 1'),
  gap: z.number().min(0).optional(),
});

/** Another step of the same phase whose rows must hold a match too. */
const alongside = z.strictObject({ step: stepId, when: conditions });

const findingRule = z.strictObject({
  id: stepId,
  severity: z.enum(['info', 'warning', 'critical']),
  message: oneLine,
  /** One condition, or a list that must all hold. */
  when: conditions.optional(),
  count: countCondition.optional(),
  standsOut: standsOut.optional(),
  alongside: alongside.optional(),
  leads: z.boolean().optional(),
  suggest: z.array(stepId).default([]),
});

/** What a lower threshold would match when the default one matches nothing. */
const thresholdHint = z.strictObject({
  param: paramName,
  age: text,
  oldest: text.optional(),
  sessions: text.optional(),
  when: conditions.optional(),
  what: oneLine,
  by: text.optional(),
  action: stepId,
});

const stepBase = {
  id: stepId,
  title: oneLine,
  why: oneLine,
  findings: z.array(findingRule).default([]),
  hints: z.array(thresholdHint).optional(),
  source: text.optional(),
};

const params = z.array(paramName).default([]);
/** An argument array (argv, never a shell line); YAML reads `--tail, 500` as a number. */
const argv = z.array(scalarText).min(1, 'expected at least one argument');
const jsRegex = text.refine((s) => {
  try {
    new RegExp(s, 'i');
    return true;
  } catch {
    return false;
  }
}, 'expected a JavaScript regular expression like connection|leak');

/** The YAML shape of each step kind, before `sql` (a file name) becomes `sqlFile`. */
export const stepShapes = {
  query: z.strictObject({
    ...stepBase,
    kind: z.literal('query'),
    sql: sqlFile,
    params,
    metrics: z.boolean().optional(),
    columns: z.array(text).min(1, 'expected at least one column').optional(),
    maxRows: z.number().int().min(1, 'expected a whole number of at least 1').optional(),
  }),
  promql: z
    .strictObject({
      ...stepBase,
      kind: z.literal('promql'),
      query: text.optional(),
      queries: z
        .record(
          z.string().regex(/^[a-z][a-z0-9_]*$/, 'expected a column name like wait_p95_ms'),
          text,
        )
        .optional(),
      by: text.optional(),
      side: z.enum(['server', 'application']).optional(),
      headline: z.record(paramName, text).optional(),
      range: durationOrParam.optional(),
      trend: z.boolean().optional(),
      columns: z.array(text).min(1, 'expected at least one column').optional(),
    })
    .refine((s) => (s.query === undefined) !== (s.queries === undefined), {
      message: 'expected either query or queries (one of them)',
      path: ['query'],
    })
    .refine((s) => s.queries === undefined || s.range === undefined, {
      message: 'queries are instant: a range goes with query',
      path: ['range'],
    }),
  kubectl: z.strictObject({
    ...stepBase,
    kind: z.literal('kubectl'),
    args: argv,
    grep: jsRegex.optional(),
    tail: z.number().int().min(1, 'expected a whole number of at least 1').optional(),
    parse: z.enum(KUBECTL_PARSERS).optional(),
    patterns: z.record(text, jsRegex).optional(),
    against: stepId.optional(),
    columns: z.array(text).min(1, 'expected at least one column').optional(),
    headline: z.record(paramName, text).optional(),
  }),
  terminate: z.strictObject({
    ...stepBase,
    kind: z.literal('terminate'),
    sql: sqlFile,
    params,
    mode: z.enum(['cancel', 'terminate']),
    summary: oneLine,
  }),
  manual: z.strictObject({
    ...stepBase,
    kind: z.literal('manual'),
    summary: oneLine.optional(),
    commands: z.array(argv).min(1, 'expected at least one command'),
    note: oneLine.optional(),
  }),
};

export const CHANGE_TARGETS = ['database', 'kubernetes'] as const;

/** A change step's YAML shape per target. */
export const changeShapes = {
  kubernetes: z.strictObject({
    ...stepBase,
    kind: z.literal('change'),
    target: z.literal('kubernetes'),
    summary: oneLine,
    commands: z.array(argv).min(1, 'expected at least one command'),
    // Required: a change poolctl cannot see take effect would be reported as done on faith.
    wait: argv,
    expect: text
      .refine((s) => {
        try {
          new RegExp(s);
          return true;
        } catch {
          return false;
        }
      }, 'expected a regular expression')
      .optional(),
  }),
  database: z.strictObject({
    ...stepBase,
    kind: z.literal('change'),
    target: z.literal('database'),
    summary: oneLine,
    sql: sqlFile,
    params,
    read: sqlFile,
    /** Values bound to the read's placeholders in order: the name of the setting it reads. */
    readArgs: z.array(text).default([]),
  }),
};

const step = z.discriminatedUnion('kind', [
  stepShapes.query.transform(({ sql, ...rest }) => ({ ...rest, sqlFile: sql, sql: '' })),
  stepShapes.promql,
  stepShapes.kubectl,
  stepShapes.terminate.transform(({ sql, ...rest }) => ({ ...rest, sqlFile: sql, sql: '' })),
  z.discriminatedUnion('target', [
    changeShapes.kubernetes,
    changeShapes.database.transform(({ sql, read, readArgs, ...rest }) => ({
      ...rest,
      sqlFile: sql,
      sql: '',
      readFile: read,
      readArgs,
      readSql: '',
    })),
  ]),
  stepShapes.manual,
]);

export const parameterSpecSchema = z.strictObject({
  type: z.enum(['duration', 'percent', 'integer', 'string']),
  default: scalarText.optional(),
  description: oneLine,
});

export const runbookSchema = z.strictObject({
  id: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/,
      'expected <engine>/<name> like postgres/pool-exhausted',
    ),
  title: oneLine,
  engine: z.enum(ENGINE_IDS),
  sources: z.array(text).default([]),
  parameters: z.record(paramName, parameterSpecSchema).default({}),
  diagnose: z.array(step).min(1, 'expected at least one step'),
  actions: z.array(step).default([]),
  // An empty verify would pass on any server: verify is how poolctl tells a recovery.
  verify: z
    .array(step)
    .min(1, 'expected at least one step: an empty verify would call any server recovered'),
  prevent: z.array(step).default([]),
  // RUNBOOK-006 "Escalation": named when the state stays critical after the mitigation.
  escalation: z
    .strictObject({
      levels: z
        .array(
          z.strictObject({
            severity: oneLine,
            response_time: duration,
            team: oneLine,
            contact: oneLine,
          }),
        )
        .min(1, 'expected at least one level'),
      channels: z.array(oneLine).default([]),
    })
    .optional(),
});

// The schema and types.ts must not drift apart: per step kind, the same keys and each side
// assignable to the other (plain assignability alone would miss a new optional field).
type Parsed = z.output<typeof runbookSchema>;
type ParsedStep = Parsed['diagnose'][number];
type SameKeys<A, B> = [keyof A] extends [keyof B]
  ? [keyof B] extends [keyof A]
    ? true
    : false
  : false;
type StepsMatch = false extends {
  [K in Step['kind']]: SameKeys<Extract<ParsedStep, { kind: K }>, Extract<Step, { kind: K }>>;
}[Step['kind']]
  ? false
  : true;
type ChangesMatch = false extends {
  [T in ChangeStep['target']]: SameKeys<
    Extract<ParsedStep, { kind: 'change'; target: T }>,
    Extract<ChangeStep, { target: T }>
  >;
}[ChangeStep['target']]
  ? false
  : true;
const _schemaMatchesTypes: [
  Parsed extends RunbookDocument ? true : false,
  RunbookDocument extends Parsed ? true : false,
  StepsMatch,
  ChangesMatch,
  SameKeys<Parsed, RunbookDocument>,
] = [true, true, true, true, true];
void _schemaMatchesTypes;

/**
 * Validates a parsed YAML document: schema first, then the cross-checks on what parsed.
 * `describePath` says where another place of the document is, in messages that point at one
 * ("first used at …"); the loader names the file and line there when the runbook includes parts.
 */
export function parseRunbookDocument(
  data: unknown,
  describePath: (path: (string | number)[]) => string = formatPath,
): {
  runbook?: RunbookDocument;
  issues: Issue[];
} {
  const result = runbookSchema.safeParse(data);
  if (!result.success)
    return { issues: result.error.issues.flatMap((i) => describeIssue(i, data)) };
  const issues = crossCheck(result.data, describePath);
  return issues.length ? { issues } : { runbook: result.data, issues };
}

/** Formats a path into a document: `diagnose[2].findings[0].severity`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out || '(top level)';
}

function at(data: unknown, path: readonly PropertyKey[]): { found: boolean; value?: unknown } {
  let cur: unknown = data;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, p)) return { found: false };
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return { found: true, value: cur };
}

/** How a value from the YAML reads in a message: `"crit"`, `5`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

function typeName(expected: string): string {
  return TYPE_NAMES[expected] ?? expected;
}

function got(data: unknown, path: readonly PropertyKey[]): string {
  const v = at(data, path);
  return v.found ? ` (got ${describeValue(v.value)})` : ' (missing)';
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): Issue[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const present = at(data, path);
  const expectMissing = (what: string) =>
    !present.found || present.value === undefined
      ? `required: expected ${what}`
      : `expected ${what}${got(data, path)}`;
  switch (issue.code) {
    case 'invalid_type':
      return [{ path, message: expectMissing(typeName(issue.expected)) }];
    case 'invalid_value':
      return [{ path, message: expectMissing(`one of ${issue.values.map(String).join(', ')}`) }];
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        path: [...path, key],
        message: unknownKeyMessage(key, knownKeysAt(path, data)),
      }));
    case 'invalid_union': {
      if (issue.discriminator === 'target')
        return [{ path, message: expectMissing(`one of ${CHANGE_TARGETS.join(', ')}`) }];
      if (issue.discriminator)
        return [{ path, message: expectMissing(`one of ${STEP_KINDS.join(', ')}`) }];
      const types = issue.errors.flatMap((branch) =>
        branch.flatMap((i) =>
          i.code === 'invalid_type' && i.path.length === 0 ? [typeName(i.expected)] : [],
        ),
      );
      if (types.length === issue.errors.length)
        return [{ path, message: expectMissing(types.join(' or ')) }];
      // The branch that got past the type check says what is wrong inside the value.
      const rootType = (b: z.core.$ZodIssue[]) =>
        b.some((i) => i.code === 'invalid_type' && i.path.length === 0);
      const branch = issue.errors.find((b) => !rootType(b)) ?? issue.errors[0] ?? [];
      return branch.flatMap((i) => describeIssue({ ...i, path: [...path, ...i.path] }, data));
    }
    case 'invalid_key':
      return [{ path, message: `invalid name: ${issue.issues[0]?.message ?? 'not allowed here'}` }];
    case 'invalid_format':
      return [{ path, message: `${issue.message}${got(data, path)}` }];
    default: {
      if (!present.found) return [{ path, message: `required: ${issue.message}` }];
      // "expected at least one step (got a list)" says nothing the path does not.
      const structural = typeof present.value === 'object' && present.value !== null;
      return [{ path, message: structural ? issue.message : `${issue.message}${got(data, path)}` }];
    }
  }
}

/** The keys allowed at `path`, for "did you mean" on an unknown key. */
function knownKeysAt(path: readonly PropertyKey[], data: unknown): string[] {
  const keys = (o: { shape: object }) => Object.keys(o.shape);
  // `include` is the loader's (include.ts): merged away before the schema sees the document.
  if (path.length === 0) return [...keys(runbookSchema), 'include'];
  if (path[0] === 'parameters') return keys(parameterSpecSchema);
  const last = path[path.length - 1];
  if (last === 'when' || path[path.length - 2] === 'when') return keys(rowCondition);
  if (last === 'count') return keys(countCondition);
  if (path[path.length - 2] === 'findings') return keys(findingRule);
  const kind = at(data, [...path, 'kind']).value;
  if (kind === 'change') {
    const target = at(data, [...path, 'target']).value;
    if (typeof target === 'string' && Object.hasOwn(changeShapes, target))
      return keys(changeShapes[target as ChangeStep['target']]);
    return [...new Set(Object.values(changeShapes).flatMap(keys))];
  }
  const shape =
    typeof kind === 'string' && Object.hasOwn(stepShapes, kind)
      ? stepShapes[kind as Exclude<Step['kind'], 'change'>]
      : undefined;
  return shape ? keys(shape) : [];
}

function unknownKeyMessage(key: string, known: string[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const close =
    known.find((k) => norm(k) === norm(key)) ?? known.find((k) => editDistance(k, key) <= 2);
  if (close) return `unknown key (did you mean "${close}"?)`;
  return known.length ? `unknown key (expected one of ${known.join(', ')})` : 'unknown key';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function list(names: string[], none: string): string {
  return names.length ? names.join(', ') : none;
}

/**
 * The step kinds each phase may hold. Diagnose and verify only read (a destructive step there would
 * run without the preview and approval of an action); actions change things or say what to do by
 * hand; prevent is advice and configuration, never a session kill.
 */
export const PHASE_KINDS: Record<Phase, readonly Step['kind'][]> = {
  diagnose: ['query', 'promql', 'kubectl', 'manual'],
  verify: ['query', 'promql', 'kubectl', 'manual'],
  actions: ['terminate', 'change', 'manual'],
  prevent: ['query', 'promql', 'kubectl', 'change', 'manual'],
};

const PHASE_RULE: Record<Phase, string> = {
  diagnose: 'diagnose only reads',
  verify: 'verify only reads',
  actions: 'an action changes something or is done by hand',
  prevent: 'prevent never kills sessions',
};

/** `{name}` in a template, as `renderTemplate` and `renderArgs` replace it. */
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function placeholdersIn(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** Every text of a step that takes `{param}` placeholders, with its path inside the step. */
function templatesOf(s: Step): [(string | number)[], string][] {
  const argvs = (key: string, list: string[][]) =>
    list.flatMap((args, i) => args.map((a, j): [(string | number)[], string] => [[key, i, j], a]));
  switch (s.kind) {
    case 'promql':
      return [
        ...(s.query !== undefined ? [[['query'], s.query] as [(string | number)[], string]] : []),
        ...Object.entries(s.queries ?? {}).map(([name, q]): [(string | number)[], string] => [
          ['queries', name],
          q,
        ]),
        ...(s.by !== undefined ? [[['by'], s.by] as [(string | number)[], string]] : []),
      ];
    case 'kubectl':
      return s.args.map((a, j) => [['args', j], a]);
    case 'manual':
      return argvs('commands', s.commands);
    case 'change':
      if (s.target === 'database') return [];
      return [
        ...argvs('commands', s.commands),
        ...(s.wait ?? []).map((a, j): [(string | number)[], string] => [['wait', j], a]),
      ];
    default:
      return [];
  }
}

/** The rules across fields: unique ids, references that resolve, defaults that parse. */
export function crossCheck(
  rb: RunbookDocument,
  describePath: (path: (string | number)[]) => string = formatPath,
): Issue[] {
  const issues: Issue[] = [];
  if (!rb.id.startsWith(`${rb.engine}/`)) {
    issues.push({
      path: ['id'],
      message: `expected to start with "${rb.engine}/" to match engine: ${rb.engine} (got "${rb.id}")`,
    });
  }
  const declared = Object.keys(rb.parameters);
  for (const [name, spec] of Object.entries(rb.parameters)) {
    if (spec.default === undefined) continue;
    try {
      parseParameterValue(spec.type, spec.default, '\0');
    } catch (err) {
      const expected = (err as Error).message.replace(/^\0: /, '');
      issues.push({
        path: ['parameters', name, 'default'],
        message: `${expected} (got "${spec.default}")`,
      });
    }
  }
  const checkParam = (path: (string | number)[], name: string) => {
    if (!declared.includes(name)) {
      issues.push({
        path,
        message: `unknown parameter "${name}" (declared: ${list(declared, 'none')})`,
      });
    }
  };
  const actionIds = rb.actions.map((s) => s.id);
  const stepIds = new Map<string, string>();
  const findingIds = new Map<string, string>();
  for (const phase of PHASES) {
    rb[phase].forEach((s, i) => {
      const here = [phase, i] as (string | number)[];
      const first = stepIds.get(s.id);
      if (first)
        issues.push({
          path: [...here, 'id'],
          message: `duplicate step id "${s.id}" (first used at ${first})`,
        });
      else stepIds.set(s.id, describePath([...here, 'id']));
      if (!PHASE_KINDS[phase].includes(s.kind)) {
        issues.push({
          path: [...here, 'kind'],
          message: `expected one of ${PHASE_KINDS[phase].join(', ')}: ${PHASE_RULE[phase]} (got "${s.kind}")`,
        });
      }
      if ('params' in s) s.params.forEach((p, k) => checkParam([...here, 'params', k], p));
      if (s.kind === 'promql') {
        const [rangeParam] = s.range === undefined ? [] : placeholdersIn(s.range);
        if (rangeParam !== undefined && rb.parameters[rangeParam]?.type !== 'duration') {
          issues.push({
            path: [...here, 'range'],
            message: `{${rangeParam}} is not a declared duration parameter (declared: ${list(declared, 'none')})`,
          });
        }
        if (s.trend && s.range === undefined) {
          issues.push({
            path: [...here, 'trend'],
            message:
              'a trend needs a range query: add range (a duration like 1h, or a {parameter})',
          });
        }
      }
      if (s.kind === 'kubectl') issues.push(...kubectlChecks(s, rb[phase].slice(0, i), here));
      for (const [where, template] of templatesOf(s)) {
        for (const name of placeholdersIn(template)) {
          if (declared.includes(name)) continue;
          issues.push({
            path: [...here, ...where],
            message: `step "${s.id}" uses {${name}}, which is not a declared parameter (declared: ${list(declared, 'none')})`,
          });
        }
      }
      (s.hints ?? []).forEach((h, j) => {
        const hpath = [...here, 'hints', j];
        if (rb.parameters[h.param]?.type !== 'duration')
          issues.push({
            path: [...hpath, 'param'],
            message: `"${h.param}" is not a declared duration parameter`,
          });
        if (!actionIds.includes(h.action))
          issues.push({
            path: [...hpath, 'action'],
            message: `"${h.action}" is not a step in actions (actions: ${list(actionIds, 'none')})`,
          });
      });
      s.findings.forEach((f, j) => {
        const fpath = [...here, 'findings', j];
        const firstF = findingIds.get(f.id);
        if (firstF)
          issues.push({
            path: [...fpath, 'id'],
            message: `duplicate finding id "${f.id}" (first used at ${firstF})`,
          });
        else findingIds.set(f.id, describePath([...fpath, 'id']));
        const conditions = f.when === undefined ? [] : Array.isArray(f.when) ? f.when : [f.when];
        conditions.forEach((c, k) => {
          const cpath = Array.isArray(f.when) ? [...fpath, 'when', k] : [...fpath, 'when'];
          if ((c.value === undefined) === (c.param === undefined)) {
            issues.push({ path: cpath, message: 'expected exactly one of value or param' });
          }
          if (c.param !== undefined) checkParam([...cpath, 'param'], c.param);
        });
        if (f.alongside) {
          const other = rb[phase].find((o) => o.id === f.alongside!.step);
          if (!other || other.id === s.id)
            issues.push({
              path: [...fpath, 'alongside', 'step'],
              message: `"${f.alongside.step}" is not another step of ${phase} (steps: ${list(
                rb[phase].filter((o) => o.id !== s.id).map((o) => o.id),
                'none',
              )})`,
            });
          const also = Array.isArray(f.alongside.when) ? f.alongside.when : [f.alongside.when];
          also.forEach((c, k) => {
            if (c.param !== undefined)
              checkParam([...fpath, 'alongside', 'when', k, 'param'], c.param);
          });
        }
        f.suggest.forEach((a, k) => {
          if (!actionIds.includes(a)) {
            issues.push({
              path: [...fpath, 'suggest', k],
              message: `"${a}" is not a step in actions (actions: ${list(actionIds, 'none')})`,
            });
          }
        });
      });
    });
  }
  return issues;
}

/** A kubectl read's options that go together: patterns with logs, a trend with the rollouts. */
function kubectlChecks(
  s: Extract<Step, { kind: 'kubectl' }>,
  earlier: Step[],
  here: (string | number)[],
): Issue[] {
  const issues: Issue[] = [];
  if (s.parse === 'logs' && s.patterns === undefined)
    issues.push({
      path: [...here, 'patterns'],
      message: 'required with parse: logs (a name per regular expression)',
    });
  if (s.patterns !== undefined && s.parse !== 'logs')
    issues.push({ path: [...here, 'patterns'], message: 'patterns go with parse: logs' });
  if (s.grep !== undefined && s.parse !== undefined)
    issues.push({
      path: [...here, 'grep'],
      message: `grep filters plain lines: with parse: ${s.parse} it would be ignored`,
    });
  if (s.against !== undefined) {
    if (s.parse !== 'replicasets')
      issues.push({ path: [...here, 'against'], message: 'against goes with parse: replicasets' });
    const trend = earlier.find((e) => e.id === s.against);
    if (!trend || trend.kind !== 'promql' || trend.trend !== true)
      issues.push({
        path: [...here, 'against'],
        message: `expected the id of an earlier trend step in this phase (a promql step with trend: true) (got "${s.against}")`,
      });
  }
  return issues;
}
