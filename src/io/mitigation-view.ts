import type { ChalkInstance } from 'chalk';
import { formatDuration } from '../runbook/params.js';
import type { Step, TerminateStep } from '../runbook/types.js';
import { countOutcomes } from '../safety/kill.js';
import type { Selection } from '../safety/selection.js';
import type { ActionRecord, MitigationReporter } from '../wizard/mitigation.js';
import type { HealthStatus, Metrics, PhaseResult } from '../wizard/model.js';
import type { IO } from './io.js';
import { indent, percent, plural, renderTable } from './render.js';

const VICTIM_COLUMNS = ['pid', 'user', 'application', 'client', 'state', 'since', 'query'];

/** Human rendering of mitigations: who will be touched, the outcome, and the numbers before/after. */
export class MitigationView implements MitigationReporter {
  constructor(
    private readonly io: IO,
    private readonly style: ChalkInstance,
  ) {}

  private print(text = '') {
    this.io.out.write(`${text}\n`);
  }

  async victims(action: TerminateStep, selection: Selection, criteria: string[]) {
    const s = this.style;
    const verb = action.mode === 'cancel' ? 'cancel the query of' : 'terminate';
    this.print(s.bold(`${action.title} [${action.id}]`));
    this.print(indent(s.dim(action.why)));
    if (selection.victims.length === 0) {
      const against = criteria.length > 0 ? ` with ${criteria.join(', ')}` : '';
      const hint =
        criteria.length > 0 ? ` (another threshold: --set ${criteria[0]!.split(' = ')[0]}=…)` : '';
      this.print(indent(s.green(`No session matches${against}: nothing to do${hint}.`)));
    } else {
      const rows = selection.victims.map((v) => ({
        ...v,
        since: formatDuration(Math.round(v.inStateS)),
      }));
      const shown = rows.slice(0, 30);
      this.print(
        indent(
          await renderTable(shown, {
            columns: VICTIM_COLUMNS,
            boxed: this.io.isStdoutTTY,
            style: s,
            maxCellWidth: 50,
          }),
        ),
      );
      if (rows.length > shown.length)
        this.print(indent(s.dim(`… and ${rows.length - shown.length} more`)));
      this.print(indent(s.bold(`Will ${verb} ${plural(selection.victims.length, 'session')}.`)));
    }
    if (selection.spared.length > 0) {
      const reasons = new Map<string, number>();
      for (const { reason } of selection.spared)
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      const list = [...reasons].map(([reason, n]) => `${n} × ${reason}`).join('; ');
      this.print(indent(s.cyan(`Left alone: ${list}`)));
    }
  }

  change(action: Step, lines: string[]) {
    const s = this.style;
    this.print(s.bold(`${action.title} [${action.id}]`));
    this.print(indent(s.dim(action.why)));
    for (const line of lines) this.print(indent(s.cyan(line), 4));
  }

  notice(text: string) {
    this.print(indent(this.style.yellow(text)));
  }

  async result(record: ActionRecord) {
    const s = this.style;
    if (record.command !== undefined) {
      this.print(s.bold(`${record.title} [${record.id}]`));
      this.print(
        indent(
          record.unavailable
            ? `Not done: ${record.unavailable}. By hand:`
            : 'poolctl does not do this one itself; run it by hand:',
        ),
      );
      for (const line of record.command.split('\n')) this.print(indent(s.cyan(line), 4));
      this.print();
      return;
    }
    if (!record.executed) {
      this.print();
      return;
    }
    if (record.commands) {
      for (const c of record.commands) {
        const mark =
          c.status === 'failed' || c.status === 'not-confirmed' ? s.red('✖') : s.green('✔');
        const detail = c.detail ? `: ${c.detail}` : '';
        this.print(indent(`${mark} ${c.status} ${s.dim(c.command.join(' '))}${detail}`));
      }
      if (record.setting?.after !== undefined)
        this.print(
          indent(`${record.setting.name}: ${record.setting.current} → ${record.setting.after}`),
        );
      if (record.before && record.after)
        this.print(indent(beforeAfter(record.before, record.after, s)));
      this.print();
      return;
    }
    const counts = countOutcomes(record.results);
    const parts = Object.entries(counts).map(([outcome, n]) => `${n} ${outcome.replace('-', ' ')}`);
    this.print(
      indent(
        `${s.green('✔')} ${parts.join(' · ')}${record.stoppedEarly ? s.yellow(' (interrupted)') : ''}`,
      ),
    );
    for (const r of record.results.filter(
      (r) => r.outcome === 'failed' || r.outcome === 'still-there',
    )) {
      this.print(indent(s.red(`pid ${r.pid}: ${r.outcome}: ${r.reason ?? ''}`), 4));
    }
    const spared = record.results.filter((r) => r.outcome === 'spared');
    for (const r of spared.slice(0, 10))
      this.print(indent(s.cyan(`pid ${r.pid} spared: ${r.reason ?? ''}`), 4));
    if (record.before && record.after)
      this.print(indent(`${settledWhen(record)}${beforeAfter(record.before, record.after, s)}`));
    for (const f of record.measured?.findings ?? [])
      if (f.id === 'refilled-after-kill') this.print(indent(s.yellow(`! ${f.message}`)));
    this.print();
  }
}

/** "2s after the kill: " — when the numbers after a kill were read (settle_after). */
function settledWhen(record: ActionRecord): string {
  if (record.settle === undefined) return '';
  const noun = record.mode === 'cancel' ? 'cancel' : 'kill';
  return record.settle.afterS > 0
    ? `${formatDuration(record.settle.afterS)} after the ${noun}: `
    : `Right after the ${noun} (settle_after 0s): `;
}

/**
 * Why mitigate exits 4 though its actions ran: the server is still critical (the finding that
 * says so) or its health could not be measured (why not).
 */
export function stillUnhealthy(
  status: HealthStatus,
  measured: Pick<PhaseResult, 'findings' | 'unmeasured'>,
  s: ChalkInstance,
): string {
  if (status === 'unknown') {
    return s.red.bold(`? Health afterwards unknown: ${measured.unmeasured.join('; ')}`);
  }
  const why = measured.findings.filter((f) => f.severity === 'critical').map((f) => f.message);
  return s.red.bold(`✖ Still critical: ${why.join('; ')}`);
}

/**
 * "96.3% → 40.7% (26 → 11 connections)", and the application's fullest pool when both numbers
 * were read through Prometheus: "application pool 100% → 16.7% (fullest replica)".
 */
export function beforeAfter(before: Metrics, after: Metrics, s: ChalkInstance): string {
  const server =
    before.utilization_percent !== undefined && after.utilization_percent !== undefined
      ? `Utilization ${s.bold(`${percent(before.utilization_percent)} → ${percent(after.utilization_percent)}`)} ` +
        `(${before.connections} → ${after.connections} connections; idle ${before.idle} → ${after.idle}, ` +
        `idle in transaction ${before.idle_in_transaction} → ${after.idle_in_transaction}, ` +
        `active ${before.active} → ${after.active})`
      : undefined;
  const [appBefore, appAfter] = [before, after].map((m) => m.app_pool_utilization_percent);
  const app =
    appBefore !== undefined && appAfter !== undefined
      ? `Application pool ${s.bold(`${percent(appBefore)} → ${percent(appAfter)}`)} (fullest replica)`
      : undefined;
  return [server, app].filter((part) => part !== undefined).join('; ') || 'No numbers to compare';
}
