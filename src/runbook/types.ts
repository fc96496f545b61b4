/**
 * The shape of a runbook once loaded and validated. The zod schema in `schema.ts` produces exactly
 * this; bundled runbooks are compiled to JSON of this shape at build time so that a diagnose never
 * loads the YAML parser or the schema library.
 */

import type { Engine } from '../engines.js';

// The engines are described once, in src/engines.ts.
export type { Engine };
export type Severity = 'info' | 'warning' | 'critical';
export type StepKind = 'query' | 'promql' | 'kubectl' | 'terminate' | 'change' | 'manual';
export type Phase = 'diagnose' | 'actions' | 'verify' | 'prevent';
/** The kinds of system a step runs against; `targetOf` in `targets.ts` maps a step to one. */
export type TargetKind = 'database' | 'prometheus' | 'kubernetes';

export type ParameterType = 'duration' | 'percent' | 'integer' | 'string';

/** A runbook parameter, settable with `--set name=value`. */
export interface ParameterSpec {
  type: ParameterType;
  /** Default in the parameter's own notation: `30s`, `90`, `api`. Absent = no default (optional). */
  default?: string;
  description: string;
}

/** Parameter values after parsing: durations in seconds, percents and integers as numbers. */
export type ParameterValues = Record<string, number | string | undefined>;

export type Comparison = '>' | '>=' | '<' | '<=' | '==' | '!=';

/** A condition on one column of a row; the right side is a literal or a parameter. */
export interface RowCondition {
  column: string;
  op: Comparison;
  value?: number | string;
  param?: string;
}

/**
 * A finding rule over a step's rows. Rows matching `when` (all rows if absent) are the matches; the
 * rule fires when there is at least one match, or, with `count`, when the number of matches
 * satisfies it. `message` may use `{count}`, `{value}` (the `when` column of the first match),
 * `{<column>}` of the first match and `{<parameter>}` (durations printed as `5m`).
 */
export interface FindingRule {
  id: string;
  severity: Severity;
  message: string;
  /** One condition, or several that must all hold. */
  when?: RowCondition | RowCondition[];
  count?: { op: Comparison; value: number };
  /**
   * Relative, not absolute: the rule fires on the row whose `column` is highest when it is at
   * least `ratio` times (and `gap` above) the next row's (`against: next`) or the other rows'
   * median (`against: median`), and that row meets `when`. Needs two rows at least. `message`
   * may use `{next_<column>}` (the runner-up's columns), `{others}`, `{others_median}`, `{times}`.
   */
  standsOut?: { column: string; against: 'next' | 'median'; ratio: number; gap?: number };
  /**
   * Evaluated once the phase has run: fires only when another step of the phase has a row meeting
   * `when` too; `message` may use `{alongside_<column>}` and `{alongside_all_<column>}`.
   */
  alongside?: { step: string; when: RowCondition | RowCondition[] };
  /**
   * Evidence of a connection leak (the application's restart or rollback ends it, a kill does
   * not): its actions come before those of other findings of the same severity. A critical
   * finding on the application's pools is such evidence without it (src/wizard/rank.ts).
   */
  leads?: boolean;
  /** Action ids (from the runbook's `actions`) that this finding makes fitting, best first. */
  suggest: string[];
}

/**
 * A threshold hint: when a critical finding stands and `param` matches none of the step's rows
 * (by their `age` column, seconds), say how many would match a lower value and the flag to set it.
 * `sessions` counts the sessions of a row that is a group, `age` then being its youngest's and
 * `oldest` its oldest's (the default matches a group whose oldest is past it); `by` names whose.
 */
export interface ThresholdHint {
  param: string;
  age: string;
  oldest?: string;
  sessions?: string;
  when?: RowCondition | RowCondition[];
  what: string;
  by?: string;
  action: string;
}

interface StepBase {
  id: string;
  title: string;
  /** One line: why this step is here, shown under its title. */
  why: string;
  findings: FindingRule[];
  /** What lower thresholds would match when the defaults match nothing (see ThresholdHint). */
  hints?: ThresholdHint[];
  /** Where in the seeds this step comes from, for the transcript and `runbooks show`. */
  source?: string;
}

export interface QueryStep extends StepBase {
  kind: 'query';
  /** SQL file name relative to the runbook (kept for `runbooks show`). */
  sqlFile: string;
  /** The SQL text, read from `sqlFile` by the loader. */
  sql: string;
  /** Parameter names bound positionally ($1… / ?), durations as seconds. Never interpolated. */
  params: string[];
  /** The single row's numeric columns become the run's headline metrics. */
  metrics?: boolean;
  /** Columns shown in the human table, in order (default: all). */
  columns?: string[];
  /** Rows shown before "… and N more" (default 10). */
  maxRows?: number;
}

/** A Prometheus query: read-only, needs a `prometheus` target. */
export interface PromqlStep extends StepBase {
  kind: 'promql';
  /**
   * PromQL; a `{param}` is replaced by the raw value (a label selector, a metric name). Its series
   * give the column `value`. Either `query` or `queries`.
   */
  query?: string;
  /**
   * Several columns, each its own instant query, joined on the label `by` into one row per
   * replica: `{ active: …, max: …, wait_p95_ms: … }`.
   */
  queries?: Record<string, string>;
  /** The label that tells the series apart (`pod`), shown as the column `replica` (`server` on a server-side step). */
  by?: string;
  /**
   * Whose side the numbers are on: `application` (default: the application's pools) or `server`
   * (the database server as its exporter shows it). A server-side step is a second opinion while
   * poolctl reads the server itself, and the database side's verdict when the server refuses it.
   */
  side?: 'server' | 'application';
  /** Headline metrics from the rows: a metric name → the column whose highest value it takes. */
  headline?: Record<string, string>;
  /** A range query over this long (`1h`, or a duration `{param}`); absent = an instant query. */
  range?: string;
  /**
   * Classify each series of the range query (src/wizard/trend.ts) and keep its points: the rows
   * gain `trend` (gradual, spike, leak, none, unknown), `trend_evidence` and `points`, which the
   * findings judge, the view draws and the HTML export charts.
   */
  trend?: boolean;
  /** The series' labels and value columns shown in the human table, in order (default: all). */
  columns?: string[];
}

/** A kubectl read: read-only, needs a `kubernetes` target. */
export interface KubectlStep extends StepBase {
  kind: 'kubectl';
  /** kubectl's argument array; `{param}` replaced per element (an argv element, never a shell). */
  args: string[];
  /** A JS regular expression, matched case-insensitively per output line: matches are kept. */
  grep?: string;
  /** Keep only the last N lines (after `grep`); with `parse: logs`, each pod's last N matches. */
  tail?: number;
  /**
   * How kubectl's output becomes rows (src/targets/kubernetes-objects.ts), absent: one row per
   * line. `logs`: per pod, the lines matching `patterns`, counted; `pods`, `deployment`,
   * `replicasets`: kubectl's `-o json`, one row per object; `rollout-history`: one per revision.
   */
  parse?: KubectlParse;
  /** With `parse: logs`: a name per JS regular expression (case-insensitive), counted per pod. */
  patterns?: Record<string, string>;
  /** With `parse: replicasets`: the id of an earlier trend step the rollouts are set against. */
  against?: string;
  /** The columns shown in the human table, in order (default: all). */
  columns?: string[];
  /** Headline numbers taken from the rows (the highest), e.g. `app_replicas: replicas`. */
  headline?: Record<string, string>;
}

export const KUBECTL_PARSERS = [
  'logs',
  'pods',
  'deployment',
  'replicasets',
  'rollout-history',
] as const;
export type KubectlParse = (typeof KUBECTL_PARSERS)[number];

export interface TerminateStep extends StepBase {
  kind: 'terminate';
  sqlFile: string;
  sql: string;
  params: string[];
  /** `cancel` stops the query (pg_cancel_backend / KILL QUERY); `terminate` ends the session. */
  mode: 'cancel' | 'terminate';
  /** Shown in the action menu. */
  summary: string;
}

interface ChangeBase extends StepBase {
  kind: 'change';
  /** Shown in the action menu. */
  summary: string;
}

/** A change to the cluster: kubectl commands applied in order, then one that confirms it. */
export interface KubernetesChangeStep extends ChangeBase {
  target: 'kubernetes';
  /** kubectl argument arrays, applied in order; `{param}` placeholders per element. */
  commands: string[][];
  /**
   * kubectl arguments that wait for and confirm the effect (`rollout status deployment/x`, or a
   * `get` that reads the changed field back). Required: a change poolctl cannot see take effect is
   * not reported as done.
   */
  wait: string[];
  /** A regular expression the wait's output must match for the effect to count as confirmed. */
  expect?: string;
}

/** A change to the database server's settings (`SET GLOBAL`), read before and after. */
export interface DatabaseChangeStep extends ChangeBase {
  target: 'database';
  /** The statement's .sql file relative to the runbook. */
  sqlFile: string;
  /** The statement, read from `sqlFile` by the loader. */
  sql: string;
  /** Parameter names bound positionally, as for a query. Never interpolated. */
  params: string[];
  /** The .sql file that reads the current value: one row with columns `setting` and `value`. */
  readFile: string;
  /**
   * Values bound to the read's placeholders in order (`[statement_timeout]`): the read names its
   * setting in the runbook, so one file serves every setting of the same kind. Never interpolated.
   */
  readArgs: string[];
  /** Its text, read by the loader. */
  readSql: string;
}

export type ChangeStep = KubernetesChangeStep | DatabaseChangeStep;

/** What the operator does by hand: poolctl never runs it. */
export interface ManualStep extends StepBase {
  kind: 'manual';
  /** Shown in the action menu when the manual step is an action. */
  summary?: string;
  /** Argument arrays of the commands to run, in order, with `{param}` placeholders per element. */
  commands: string[][];
  /** One line after the commands: "then restart PostgreSQL: pg_reload_conf() is not enough". */
  note?: string;
}

export type Step = QueryStep | PromqlStep | KubectlStep | TerminateStep | ChangeStep | ManualStep;

export interface Runbook {
  id: string;
  title: string;
  engine: Engine;
  /** The seed documents this runbook was written from. */
  sources: string[];
  parameters: Record<string, ParameterSpec>;
  diagnose: Step[];
  actions: Step[];
  verify: Step[];
  prevent: Step[];
  /** Who to call when the state stays critical after the mitigation (RUNBOOK-006 "Escalation"). */
  escalation?: Escalation;
  /** Absolute path of the YAML file, or `bundled:<id>` for a compiled runbook. */
  origin: string;
}

/** A runbook's escalation table: levels in order (P0 first) and the channels to post in. */
export interface Escalation {
  levels: { severity: string; response_time: string; team: string; contact: string }[];
  channels: string[];
}
