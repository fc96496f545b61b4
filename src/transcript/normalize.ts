/**
 * Turns one parsed transcript line into a typed event. Every file poolctl ever wrote reads:
 * - before the schema version (schema 0): no `schema`, no `run`, and the operator as `osUser` /
 *   `hostname` (or `user` / `host`) fields or a `user@host` string instead of `{ user, host }`;
 * - schema 1: the shapes in types.ts.
 * Fields no type names are kept as they were written. A field missing or of the wrong type
 * reads as its empty value ('' , 0, [], false), so the
 * exporters never meet `undefined` where the type promises a value. A line of a type this
 * version does not know (a newer poolctl) is kept as an `unknown` event with its fields.
 * Enumerated strings (a severity, an outcome) are taken as written: a newer value shows as is.
 */
import type { VictimResult } from '../safety/kill.js';
import type { Session } from '../targets/types.js';
import type { Finding } from '../wizard/model.js';
import type {
  ActionEvent,
  AnsweredBy,
  ChangeIntentEvent,
  ChangeOutcomeEvent,
  EventType,
  ManualEvent,
  RecordedEvent,
  SessionStartEvent,
  Stamp,
  StepResultEvent,
  TranscriptEvent,
} from './types.js';

type Raw = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const optStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const optNum = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const obj = (v: unknown): Raw =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string =>
  v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
const numbers = (v: unknown): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [k, val] of Object.entries(obj(v))) {
    const n = optNum(val);
    if (n !== undefined) out[k] = n;
  }
  return out;
};
const optNumbers = (v: unknown): Record<string, number> | undefined => {
  const m = numbers(v);
  return Object.keys(m).length > 0 ? m : undefined;
};
const mode = (v: unknown): 'cancel' | 'terminate' => (v === 'cancel' ? 'cancel' : 'terminate');
const answeredBy = (v: unknown): AnsweredBy => str(v) as AnsweredBy;

/** Every type this version reads; anything else is an `unknown` event. */
const KNOWN: ReadonlySet<string> = new Set<EventType>([
  'session.start',
  'step.start',
  'step.result',
  'finding',
  'prompt',
  'intent',
  'outcome',
  'change.intent',
  'change.outcome',
  'action',
  'note',
  'manual',
  'metrics',
  'session.end',
]);

/** `raw` must be an object with a string `type` (the reader checks). */
export function normalizeEvent(raw: Raw): RecordedEvent {
  const stamp: Stamp = { ts: str(raw.ts), incident: str(raw.incident) };
  const run = optStr(raw.run);
  if (run !== undefined) stamp.run = run;
  const type = str(raw.type);
  if (!KNOWN.has(type)) {
    const fields: Raw = {};
    for (const [k, v] of Object.entries(raw))
      if (!['type', 'ts', 'incident', 'run'].includes(k)) fields[k] = v;
    return { type: 'unknown', recordedType: type, fields, ...stamp };
  }
  // Fields this version does not read are kept (the JSON export shows everything recorded); the
  // typed fields, normalised, take their place where names meet.
  return { ...raw, ...known(type as EventType, raw), ...stamp } as RecordedEvent;
}

function known(type: EventType, e: Raw): TranscriptEvent {
  switch (type) {
    case 'session.start':
      return sessionStart(e);
    case 'step.start':
      return {
        type,
        step: text(e.step),
        title: optStr(e.title) ?? text(e.step),
        kind: str(e.kind),
        phase: str(e.phase),
      };
    case 'step.result': {
      const rows = arr(e.rows).map(obj);
      const out: StepResultEvent = {
        type,
        step: text(e.step),
        status: (optStr(e.status) ?? 'ok') as StepResultEvent['status'],
        durationMs: num(e.durationMs),
        rowCount: optNum(e.rowCount) ?? rows.length,
        rows,
      };
      if (typeof e.error === 'string') out.error = e.error;
      return out;
    }
    case 'finding':
      return { type, ...finding(e) };
    case 'prompt':
      return {
        type,
        question: text(e.question),
        answer: text(e.answer),
        answeredBy: answeredBy(e.answeredBy),
        ...(typeof e.step === 'string' ? { step: e.step } : {}),
      };
    case 'intent':
      return {
        type,
        step: text(e.step),
        title: str(e.title),
        mode: mode(e.mode),
        ...(e.escalation === true ? { escalation: true } : {}),
        ...(typeof e.approvedBy === 'string' ? { approvedBy: answeredBy(e.approvedBy) } : {}),
        victims: arr(e.victims).map(session),
      };
    case 'outcome':
      return { type, step: text(e.step), mode: mode(e.mode), results: arr(e.results).map(result) };
    case 'change.intent': {
      const out: ChangeIntentEvent = {
        type,
        step: text(e.step),
        title: str(e.title),
        target: e.target === 'database' ? 'database' : 'kubernetes',
        ...(typeof e.approvedBy === 'string' ? { approvedBy: answeredBy(e.approvedBy) } : {}),
      };
      if (Array.isArray(e.commands)) out.commands = arr(e.commands).map((c) => arr(c).map(str));
      if (e.setting && typeof e.setting === 'object') {
        const s = obj(e.setting);
        out.setting = {
          name: str(s.name),
          current: str(s.current),
          next: str(s.next),
          statement: str(s.statement),
        };
      }
      return out;
    }
    case 'change.outcome':
      return {
        type,
        step: text(e.step),
        command: arr(e.command).map(str),
        status: (optStr(e.status) ?? 'failed') as ChangeOutcomeEvent['status'],
        ...(typeof e.detail === 'string' ? { detail: e.detail } : {}),
      };
    case 'action':
      return action(e);
    case 'note':
      return { type, text: text(e.text), ...(e.step != null ? { step: text(e.step) } : {}) };
    case 'manual':
      return {
        type,
        step: text(e.step),
        command: text(e.command),
        status: (optStr(e.status) ?? 'pending') as ManualEvent['status'],
      };
    case 'metrics':
      return { type, label: optStr(e.label) ?? 'metrics', metrics: numbers(e.metrics) };
    case 'session.end':
      return { type, status: optStr(e.status) ?? 'unknown', exitCode: optNum(e.exitCode) ?? null };
  }
}

function sessionStart(e: Raw): SessionStartEvent {
  const out: SessionStartEvent = {
    type: 'session.start',
    // Files from before the version existed have none: schema 0.
    schema: num(e.schema),
    command: optStr(e.command) ?? 'poolctl',
    argv: arr(e.argv).map(text),
    runbook: str(e.runbook),
    targets: arr(e.targets).map(text),
    poolctl: str(e.poolctl),
    mode: e.mode === 'interactive' ? 'interactive' : 'non-interactive',
    parameters: Object.fromEntries(Object.entries(obj(e.parameters)).map(([k, v]) => [k, text(v)])),
  };
  const operator = operatorOf(e);
  if (operator) out.operator = operator;
  return out;
}

/** `operator: {user, host}`; older: `operator: "alice@db1"`, or `osUser`/`user`, `hostname`/`host`. */
function operatorOf(e: Raw): SessionStartEvent['operator'] {
  if (typeof e.operator === 'string' && e.operator) {
    const at = e.operator.lastIndexOf('@');
    return at < 0
      ? { user: e.operator, host: '' }
      : { user: e.operator.slice(0, at), host: e.operator.slice(at + 1) };
  }
  const o = obj(e.operator);
  const user = optStr(o.user) ?? optStr(e.osUser) ?? optStr(e.user);
  const host = optStr(o.host) ?? optStr(e.hostname) ?? optStr(e.host);
  if (!user && !host) return undefined;
  return { user: user ?? '', host: host ?? '' };
}

function finding(e: Raw): Finding {
  return {
    id: text(e.id),
    severity: (optStr(e.severity) ?? 'info') as Finding['severity'],
    message: text(e.message),
    step: text(e.step),
    suggest: arr(e.suggest).map(text),
    count: num(e.count),
  };
}

/** A recorded victim: the fields an export shows, each present. */
function session(v: unknown): Session {
  const o = obj(v);
  return {
    ...o,
    pid: num(o.pid),
    sessionToken: text(o.sessionToken),
    queryToken: text(o.queryToken),
    user: text(o.user),
    application: text(o.application),
    client: text(o.client),
    state: text(o.state),
    inStateS: num(o.inStateS),
    query: text(o.query),
    superuser: o.superuser === true,
  } as Session;
}

function result(v: unknown): VictimResult {
  const o = obj(v);
  const out: VictimResult = { pid: num(o.pid), outcome: str(o.outcome) as VictimResult['outcome'] };
  if (typeof o.reason === 'string') out.reason = o.reason;
  return out;
}

function action(e: Raw): ActionEvent {
  const results = arr(e.results).map(result);
  // Older files may lack the counts; they are the results counted by outcome.
  let outcomes = numbers(e.outcomes);
  if (Object.keys(e.outcomes ?? {}).length === 0 && results.length > 0) {
    outcomes = {};
    for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  }
  const out: ActionEvent = {
    type: 'action',
    id: text(e.id),
    title: str(e.title),
    kind: str(e.kind) as ActionEvent['kind'],
    executed: e.executed === true,
    dryRun: e.dryRun === true,
    declined: e.declined === true,
    victims: arr(e.victims).map(session),
    spared: arr(e.spared).map((s) => {
      const o = obj(s);
      return {
        pid: num(o.pid),
        user: text(o.user),
        application: text(o.application),
        reason: text(o.reason),
      };
    }),
    results,
    stoppedEarly: e.stoppedEarly === true,
    outcomes,
  };
  if (e.mode === 'cancel' || e.mode === 'terminate') out.mode = e.mode;
  if (typeof e.answeredBy === 'string') out.answeredBy = answeredBy(e.answeredBy);
  const capacity = obj(e.capacity);
  if (typeof capacity.arithmetic === 'string') {
    out.capacity = {
      ...numbers(capacity),
      arithmetic: capacity.arithmetic,
      unknown: arr(capacity.unknown).map(text),
      ...(typeof capacity.oversubscribed === 'boolean' && {
        oversubscribed: capacity.oversubscribed,
      }),
      ...(typeof capacity.over_usable === 'boolean'
        ? { over_usable: capacity.over_usable }
        : // Written before the buffer: oversubscribed then meant past the usable connections.
          typeof capacity.oversubscribed === 'boolean' &&
          typeof capacity.buffer !== 'number' && { over_usable: capacity.oversubscribed }),
      ...(typeof capacity.lowers_demand === 'boolean' && {
        lowers_demand: capacity.lowers_demand,
      }),
      ...(typeof obj(capacity.current).arithmetic === 'string' && {
        current: {
          arithmetic: text(obj(capacity.current).arithmetic),
          ...(typeof obj(capacity.current).demand === 'number' && {
            demand: num(obj(capacity.current).demand),
          }),
        },
      }),
    };
  }
  const before = optNumbers(e.before);
  const after = optNumbers(e.after);
  if (before) out.before = before;
  if (after) out.after = after;
  const settle = obj(e.settle);
  if (typeof settle.afterS === 'number') out.settle = { ...numbers(settle), afterS: settle.afterS };
  return out;
}
