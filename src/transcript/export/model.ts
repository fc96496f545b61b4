/**
 * Reads an incident's events once into the shape every export shares: the summary a postmortem
 * starts from, the timeline, the evidence, the actions, findings, manual steps and notes. The
 * exporters (Markdown, HTML, JSON, the terminal timeline) only format what this computes, so the
 * numbers agree whichever format is read.
 */
import type { ActionEvent, RecordedEvent } from '../types.js';
import { describeEvent, type EventLine } from './describe.js';
import type { Capacity } from '../../wizard/capacity.js';

export type Metrics = Record<string, number>;
export type Row = Record<string, unknown>;

/** One measurement of the server: a metrics step, or an action's before/after. */
export interface Measurement {
  ts: string;
  /** What took it: `diagnose`, `verify`, `before kill-idle`, `after kill-idle`. */
  label: string;
  metrics: Metrics;
}

/** One poolctl run inside the incident file (`session.start` … `session.end`). */
export interface RunInfo {
  command: string;
  started: string;
  ended?: string;
  /** `session.end` status; absent when the run never ended (crash, or still running). */
  status?: string;
  exitCode?: number;
  mode?: string;
  runbook?: string;
  targets: string[];
  argv: string[];
  /** `--set` values of the run, as given. */
  parameters: Record<string, string>;
  /** `user@host` when the run recorded who ran it. */
  operator?: string;
  poolctl?: string;
}

export interface StepEvidence {
  ts: string;
  command: string;
  phase?: string;
  step: string;
  title: string;
  status: string;
  durationMs?: number;
  /** Rows the step returned; `rows` holds the first of them (the writer keeps 50). */
  rowCount: number;
  rows: Row[];
  error?: string;
}

export interface VictimRow {
  pid: number;
  user: string;
  application: string;
  client: string;
  state: string;
  inStateS?: number;
  query: string;
  outcome: string;
  reason: string;
}

export interface ActionReport {
  ts: string;
  command: string;
  id: string;
  kind: string;
  mode?: string;
  executed: boolean;
  dryRun: boolean;
  declined: boolean;
  /** The approval question and who answered it, when one was asked. */
  prompt?: { question: string; answer: string; answeredBy: string };
  victims: VictimRow[];
  spared: { pid: number; user: string; application: string; reason: string }[];
  outcomes: Record<string, number>;
  /** A change's commands (or statement) and what became of each; `unknown` when not recorded. */
  commands?: { command: string[]; status: string; detail?: string }[];
  setting?: { name: string; current: string; next: string; after?: string };
  /** A scale or pool size change: replicas × (pool_size + max_overflow) against usable slots. */
  capacity?: Capacity;
  before?: Metrics;
  after?: Metrics;
  stoppedEarly: boolean;
  /**
   * Only the intent (and the outcomes of some batches) were recorded: the run ended before the
   * action's own event. Victims without an outcome read "unknown".
   */
  interrupted?: boolean;
}

export interface FindingReport {
  ts: string;
  command: string;
  id: string;
  severity: string;
  message: string;
  step: string;
  count?: number;
  suggest: string[];
}

export interface ManualReport {
  ts: string;
  step: string;
  title: string;
  command: string;
  status: string;
  notes: string[];
}

export interface NoteReport {
  ts: string;
  step?: string;
  text: string;
}

export interface TimelineEntry {
  ts: string;
  /** Milliseconds since the first event. */
  elapsedMs: number;
  /** Short label: start, step, metrics, finding, prompt, action, by hand, note, end. */
  event: string;
  /** One line saying what happened; server text in it is not yet escaped for any format. */
  text: string;
  /** A command after the text (manual steps), for formats that show code. */
  code?: string;
  severity?: string;
}

export interface IncidentSummary {
  incident: string;
  /** `ts` of the first and last events (ISO, UTC). */
  started?: string;
  ended?: string;
  durationMs: number;
  targets: string[];
  runbooks: string[];
  runs: RunInfo[];
  /** The last run's `session.end` status; `incomplete` when it never ended. */
  status: string;
  exitCode: number | null;
  /** Who ran it (`user@host`), when the runs recorded it. */
  operators: string[];
  /** The first and last measurements of the incident, and the fullest one. */
  before?: Measurement;
  after?: Measurement;
  peak?: Measurement;
  /** Utilization thresholds in percent: `--set` values of the runs, else the runbook defaults. */
  thresholds: { warning?: number; critical?: number };
  findings: Record<'critical' | 'warning' | 'info', number>;
  actions: { executed: number; declined: number; dryRun: number; outcomes: Record<string, number> };
  manual: Record<string, number>;
  events: number;
  warnings: string[];
}

export interface IncidentReport {
  summary: IncidentSummary;
  timeline: TimelineEntry[];
  evidence: StepEvidence[];
  actions: ActionReport[];
  findings: FindingReport[];
  manual: ManualReport[];
  notes: NoteReport[];
  /** Every measurement in time order: the utilization chart. */
  measurements: Measurement[];
}

export interface BuildOptions {
  /** The incident id when no event names one (the file's base name). */
  incident: string;
  /** Runbook parameter defaults by runbook id, for thresholds no run overrode. */
  defaults?: (runbook: string) => Record<string, string | undefined> | undefined;
  /** Problems found while reading the file (torn or bad lines). */
  warnings?: string[];
}

export function buildIncident(events: RecordedEvent[], opts: BuildOptions): IncidentReport {
  const warnings = [...(opts.warnings ?? [])];
  const t0 = firstTs(events);
  const runs: RunInfo[] = [];
  const timeline: TimelineEntry[] = [];
  const evidence: StepEvidence[] = [];
  const actions: ActionReport[] = [];
  const findings: FindingReport[] = [];
  const manual = new Map<string, ManualReport>();
  const notes: NoteReport[] = [];
  const measurements: Measurement[] = [];
  const titles = new Map<string, string>();
  let pendingStart: { ts: string; step: string; title: string } | undefined;
  let pendingPrompt: ActionReport['prompt'] | undefined;
  /** Approvals recorded with their step (schema 1 onwards), by run and step: no guessing. */
  const approvals = new Map<string, NonNullable<ActionReport['prompt']>>();
  let run: RunInfo | undefined;
  let lastTs = t0;
  // Two runs of one incident may write at once: their events carry `run` (older files do not, and
  // are read in order). The state of the runs not being read right now waits here.
  const byRun = new Map<string, RunState>();
  let current = '';
  // Intents whose action event has not been seen yet, by run and step.
  const openIntents = new Map<string, ActionReport>();

  const push = (e: RecordedEvent, line: EventLine) => {
    const ts = e.ts || lastTs || '';
    timeline.push({ ts, elapsedMs: elapsed(t0, ts), ...line });
  };
  // A step.start without a result means the run stopped inside that step: say so in the timeline.
  const flushStart = () => {
    if (!pendingStart) return;
    const { ts, step, title } = pendingStart;
    timeline.push({
      ts,
      elapsedMs: elapsed(t0, ts),
      event: 'step',
      text: `${title} (${step}): started, no result recorded`,
    });
    pendingStart = undefined;
  };

  const approvalOf = (key: string) => {
    const asked = approvals.get(key);
    approvals.delete(key);
    return asked;
  };

  events.forEach((e, i) => {
    const ts = e.ts || lastTs || '';
    const runId = e.run ?? '';
    if (runId !== current) {
      byRun.set(current, { run, pendingStart, pendingPrompt });
      ({ run, pendingStart, pendingPrompt } = byRun.get(runId) ?? { run });
      byRun.delete(runId);
      current = runId;
    }
    const command = run?.command ?? '';
    const intentKey = `${runId}/${e.type === 'action' ? e.id : 'step' in e ? e.step : ''}`;
    switch (e.type) {
      case 'session.start': {
        flushStart();
        const { user, host } = e.operator ?? { user: '', host: '' };
        run = {
          command: e.command,
          started: ts,
          mode: e.mode,
          runbook: e.runbook || undefined,
          targets: e.targets,
          argv: e.argv,
          parameters: e.parameters,
          operator: host ? `${user || '?'}@${host}` : user || undefined,
          poolctl: e.poolctl || undefined,
        };
        runs.push(run);
        break;
      }
      case 'session.end':
        flushStart();
        if (run) {
          run.ended = ts;
          run.status = e.status;
          run.exitCode = e.exitCode ?? undefined;
        }
        break;
      case 'step.start':
        flushStart();
        titles.set(e.step, e.title);
        pendingStart = { ts, step: e.step, title: e.title };
        break;
      case 'step.result': {
        const step = e.step;
        if (pendingStart?.step === step) pendingStart = undefined;
        const rows = e.rows ?? [];
        evidence.push({
          ts,
          command,
          phase: findPhase(events, i, step),
          step,
          title: titles.get(step) ?? step,
          status: e.status,
          durationMs: e.durationMs,
          rowCount: e.rowCount ?? rows.length,
          rows,
          error: e.error,
        });
        break;
      }
      case 'metrics': {
        if (Object.keys(e.metrics).length > 0)
          measurements.push({ ts, label: e.label, metrics: e.metrics });
        break;
      }
      case 'finding':
        findings.push({
          ts,
          command,
          id: e.id,
          severity: e.severity,
          message: e.message,
          step: e.step,
          count: e.count,
          suggest: e.suggest,
        });
        break;
      case 'prompt':
        if (e.step !== undefined)
          approvals.set(intentKey, {
            question: e.question,
            answer: e.answer,
            answeredBy: e.answeredBy,
          });
        else pendingPrompt = { question: e.question, answer: e.answer, answeredBy: e.answeredBy };
        break;
      case 'intent': {
        const open = openIntents.get(intentKey);
        if (open && e.escalation === true) {
          // Terminate what a cancel did not end: those victims' outcomes are open again.
          const pids = new Set(e.victims.map((v) => v.pid));
          for (const v of open.victims)
            if (pids.has(v.pid))
              Object.assign(v, UNKNOWN, { reason: `escalated: ${UNKNOWN.reason}` });
          open.outcomes = countOutcomes(open.victims);
          break;
        }
        const report = actionOf(
          {
            type: 'action',
            id: e.step,
            title: e.title,
            kind: 'terminate',
            mode: e.mode,
            executed: true,
            dryRun: false,
            declined: false,
            victims: e.victims,
            spared: [],
            results: [],
            stoppedEarly: false,
            outcomes: {},
          },
          ts,
          command,
          approvalOf(intentKey) ?? pendingPrompt,
        );
        for (const v of report.victims) Object.assign(v, UNKNOWN);
        report.outcomes = countOutcomes(report.victims);
        report.interrupted = true;
        pendingPrompt = undefined;
        actions.push(report);
        openIntents.set(intentKey, report);
        break;
      }
      case 'change.intent': {
        // Until the action's own event: each command unknown, as a kill's victims are.
        const commands = e.commands ?? (e.setting ? [[e.setting.statement]] : []);
        const report = actionOf(
          {
            type: 'action',
            id: e.step,
            title: e.title,
            kind: 'change',
            executed: true,
            dryRun: false,
            declined: false,
            victims: [],
            spared: [],
            results: [],
            stoppedEarly: false,
            outcomes: {},
            ...(e.setting ? { setting: { ...e.setting } } : {}),
          },
          ts,
          command,
          approvalOf(intentKey) ?? pendingPrompt,
        );
        report.commands = commands.map((argv) => ({ command: argv, status: 'unknown' }));
        report.interrupted = true;
        pendingPrompt = undefined;
        actions.push(report);
        openIntents.set(intentKey, report);
        break;
      }
      case 'change.outcome': {
        const open = openIntents.get(intentKey);
        const row = open?.commands?.find(
          (c) => c.status === 'unknown' && c.command.join(' ') === e.command.join(' '),
        );
        if (row) Object.assign(row, { status: e.status, detail: e.detail });
        else open?.commands?.push({ command: e.command, status: e.status, detail: e.detail });
        break;
      }
      case 'outcome': {
        const open = openIntents.get(intentKey);
        if (!open) break;
        const rows = new Map(open.victims.map((v) => [v.pid, v]));
        for (const r of e.results) {
          const v = rows.get(r.pid);
          if (!v) continue;
          v.outcome = r.outcome;
          v.reason =
            r.reason ?? (v.outcome === 'signalled' ? `signal sent; ${UNKNOWN.reason}` : '');
        }
        open.outcomes = countOutcomes(open.victims);
        break;
      }
      case 'action': {
        // The approval is the last prompt since the previous action, and is asked only when
        // there were sessions to act on ("Which mitigation?" comes before it, not instead).
        const hasVictims = e.victims.length > 0;
        const open = openIntents.get(intentKey);
        const report = actionOf(
          e,
          ts,
          command,
          open?.prompt ?? approvalOf(intentKey) ?? (hasVictims ? pendingPrompt : undefined),
        );
        if (!open) pendingPrompt = undefined;
        openIntents.delete(intentKey);
        // The action's own event completes its intent: one action, where the intent was.
        if (open) actions.splice(actions.indexOf(open), 1, report);
        else actions.push(report);
        // The before numbers were taken just before the approval; the after ones just now.
        const beforeTs = (i > 0 && events[i - 1]?.ts) || ts;
        if (report.before)
          measurements.push({ ts: beforeTs, label: `before ${report.id}`, metrics: report.before });
        if (report.after)
          measurements.push({ ts, label: `after ${report.id}`, metrics: report.after });
        break;
      }
      case 'manual': {
        const step = e.step;
        // A later run's mark (done, skipped) replaces an earlier one for the same step.
        manual.delete(step);
        manual.set(step, {
          ts,
          step,
          title: titles.get(step) ?? step,
          command: e.command,
          status: e.status,
          notes: [],
        });
        if (pendingStart?.step === step) pendingStart = undefined;
        break;
      }
      case 'note':
        notes.push({ ts, step: e.step, text: e.text });
        break;
    }
    const line = describeEvent(e, { titles, command });
    if (line) push(e, line);
    if (e.type === 'session.start') pendingPrompt = undefined;
    lastTs = ts || lastTs;
  });
  flushStart();
  for (const [, state] of byRun) {
    pendingStart = state.pendingStart;
    flushStart();
  }

  // The operator's note on a manual step is written before the step's mark: attach at the end.
  for (const n of notes) if (n.step) manual.get(n.step)?.notes.push(n.text);
  measurements.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  const last = runs.at(-1);
  if (last && last.status === undefined) {
    warnings.push(
      `the last run (${last.command}, started ${last.started}) has no end: it crashed or is still running`,
    );
  }
  const summary: IncidentSummary = {
    incident: events.find((e) => e.incident)?.incident ?? opts.incident,
    started: t0,
    ended: lastTs,
    durationMs: t0 && lastTs ? elapsed(t0, lastTs) : 0,
    targets: unique(runs.flatMap((r) => r.targets)),
    runbooks: unique(runs.flatMap((r) => (r.runbook ? [r.runbook] : []))),
    runs,
    status: last ? (last.status ?? 'incomplete') : events.length ? 'unknown' : 'empty',
    exitCode: last?.exitCode ?? null,
    operators: unique(runs.flatMap((r) => (r.operator ? [r.operator] : []))),
    before: measurements[0],
    after: measurements.length > 1 ? measurements.at(-1) : undefined,
    peak: peakOf(measurements),
    thresholds: thresholdsOf(runs, opts.defaults),
    findings: countBy(findings, (f) => f.severity, ['critical', 'warning', 'info']),
    actions: {
      executed: actions.filter((a) => a.executed).length,
      declined: actions.filter((a) => a.declined).length,
      dryRun: actions.filter((a) => a.dryRun && !a.executed).length,
      outcomes: sumOutcomes(actions),
    },
    manual: countBy([...manual.values()], (m) => m.status, []),
    events: events.length,
    warnings,
  };
  return {
    summary,
    timeline,
    evidence,
    actions,
    findings,
    manual: [...manual.values()],
    notes,
    measurements,
  };
}

/** What the reader keeps per run while another run's events are read. */
interface RunState {
  run?: RunInfo;
  pendingStart?: { ts: string; step: string; title: string };
  pendingPrompt?: ActionReport['prompt'];
}

/** A victim named by an intent whose outcome was never recorded. */
const UNKNOWN = { outcome: 'unknown', reason: 'outcome unknown: the run was interrupted' };

function countOutcomes(victims: VictimRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of victims) out[v.outcome] = (out[v.outcome] ?? 0) + 1;
  return out;
}

function firstTs(events: RecordedEvent[]): string | undefined {
  for (const e of events) if (e.ts) return e.ts;
  return undefined;
}

/**
 * A step's rows as both exports lay them out. One row with many columns reads better as
 * column/value pairs. A cell with a `column` is a value of that column (query text is shown as
 * code); one without is plain text (a column name). Columns whose every value is a number (or
 * empty) are numeric: right-aligned.
 */
export interface RowsLayout {
  headers: string[];
  rows: { column?: string; value: unknown }[][];
  numeric: number[];
}

export function layoutRows(input: Row[]): RowsLayout {
  // A trend's series is drawn (HTML) or kept whole (JSON export), not printed in a cell.
  const rows = input.map((r) =>
    Array.isArray(r.points) ? { ...r, points: `${r.points.length} points` } : r,
  );
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (rows.length === 1 && columns.length > 6) {
    const row = rows[0]!;
    return {
      headers: ['Column', 'Value'],
      rows: columns.map((c) => [{ value: c }, { column: c, value: row[c] }]),
      numeric: [],
    };
  }
  return {
    headers: columns,
    rows: rows.map((r) => columns.map((c) => ({ column: c, value: r[c] }))),
    numeric: columns
      .map((c, i) => (rows.every((r) => typeof r[c] === 'number' || r[c] == null) ? i : -1))
      .filter((i) => i >= 0),
  };
}

export function elapsed(from: string | undefined, to: string): number {
  const a = from ? Date.parse(from) : NaN;
  const b = Date.parse(to);
  return Number.isNaN(a) || Number.isNaN(b) ? 0 : Math.max(0, b - a);
}

function findPhase(events: RecordedEvent[], i: number, step: string): string | undefined {
  for (let j = i - 1; j >= 0; j--) {
    const e = events[j]!;
    if (e.type === 'session.start') return undefined;
    if (e.type === 'step.start' && e.step === step) return e.phase;
  }
  return undefined;
}

function actionOf(
  e: ActionEvent,
  ts: string,
  command: string,
  prompt: ActionReport['prompt'],
): ActionReport {
  const results = new Map(e.results.map((r) => [r.pid, r]));
  const victims = e.victims.map((v): VictimRow => {
    const r = results.get(v.pid);
    return {
      pid: v.pid,
      user: v.user,
      application: v.application,
      client: v.client,
      state: v.state,
      inStateS: v.inStateS,
      query: v.query,
      outcome: r?.outcome ?? (e.executed ? 'no result' : 'not touched'),
      reason: r?.reason ?? '',
    };
  });
  return {
    ts,
    command,
    id: e.id,
    kind: e.kind,
    mode: e.mode,
    executed: e.executed,
    dryRun: e.dryRun,
    declined: e.declined,
    prompt,
    victims,
    spared: e.spared,
    outcomes: { ...e.outcomes },
    ...(e.commands ? { commands: e.commands.map((c) => ({ ...c })) } : {}),
    ...(e.setting ? { setting: { ...e.setting } } : {}),
    ...(e.capacity ? { capacity: { ...e.capacity } } : {}),
    before: e.before,
    after: e.after,
    stoppedEarly: e.stoppedEarly,
  };
}

function peakOf(ms: Measurement[]): Measurement | undefined {
  let peak: Measurement | undefined;
  for (const m of ms) {
    const u = m.metrics.utilization_percent;
    if (u !== undefined && (peak === undefined || u > peak.metrics.utilization_percent!)) peak = m;
  }
  return peak;
}

function thresholdsOf(
  runs: RunInfo[],
  defaults: BuildOptions['defaults'],
): IncidentSummary['thresholds'] {
  const pick = (name: string): number | undefined => {
    // The latest run's --set wins; then the runbook's default.
    for (const r of [...runs].reverse()) {
      const v = Number.parseFloat(r.parameters[name] ?? '');
      if (Number.isFinite(v)) return v;
    }
    for (const r of [...runs].reverse()) {
      const d = r.runbook ? defaults?.(r.runbook)?.[name] : undefined;
      const v = Number.parseFloat(d ?? '');
      if (Number.isFinite(v)) return v;
    }
    return undefined;
  };
  const out: IncidentSummary['thresholds'] = {};
  const warning = pick('utilization_warning');
  const critical = pick('utilization_critical');
  if (warning !== undefined) out.warning = warning;
  if (critical !== undefined) out.critical = critical;
  return out;
}

function countBy<T, K extends string>(
  items: T[],
  key: (t: T) => string,
  keys: readonly K[],
): Record<K, number> {
  const out = Object.fromEntries(keys.map((k) => [k, 0])) as Record<string, number>;
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out as Record<K, number>;
}

function sumOutcomes(actions: ActionReport[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of actions)
    for (const [k, n] of Object.entries(a.outcomes)) out[k] = (out[k] ?? 0) + n;
  return out;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
