import type { Sides } from '../wizard/sides.js';
import type { ChalkInstance } from 'chalk';
import type { ParameterValues, Runbook, Step } from '../runbook/types.js';
import type { PhaseReporter } from '../wizard/phase.js';
import type { Finding, HealthStatus, Metrics, PhaseResult, StepOutcome } from '../wizard/model.js';
import { bySeverity } from '../wizard/model.js';
import type { IO } from './io.js';
import type { Transcript } from '../transcript/types.js';
import {
  cellText,
  indent,
  percent,
  renderRecord,
  renderTable,
  severityLabel,
  transcriptText,
} from './render.js';
import { startSpinner, type Spinner } from './spinner.js';
import { trendCharts } from './trend-chart.js';

/** A suggested action with the command that runs it without prompts. */
export interface Suggestion {
  id: string;
  title: string;
  summary: string;
  command: string;
  /**
   * The same action with the lower threshold a hint found (the default matches nothing): a
   * separate command, without --yes, since it selects more than the runbook's default would.
   */
  lower_threshold?: {
    set: string;
    /** The sessions the hint counted: `6 orders sessions idle > 6s`. */
    count: number;
    matches: string;
    command: string;
  };
}

export interface SummaryInput {
  status: HealthStatus;
  result: PhaseResult;
  suggestions: Suggestion[];
  transcript: Pick<Transcript, 'path' | 'unrecorded'>;
  /** Which side is exhausted, and whether the application's side was measured at all. */
  sides?: Sides;
}

/**
 * The human rendering of a diagnose: the headline as soon as it is known, each step as it
 * completes (a spinner on stderr while one waits), then the summary. Results go to stdout.
 */
export class DiagnoseView implements PhaseReporter {
  private spinner?: Spinner;
  private headlineShown = false;

  constructor(
    private readonly io: IO,
    private readonly style: ChalkInstance,
    private readonly runbook: Runbook,
    private readonly values: ParameterValues,
  ) {}

  private print(text = '') {
    this.io.out.write(`${text}\n`);
  }

  /** `command` is the one the operator typed: verify and mitigate share this view. */
  header(
    command: 'diagnose' | 'verify' | 'mitigate' | 'prevent',
    targetLabel: string,
    serverVersion: string,
    incident: string,
    transcript: Pick<Transcript, 'path' | 'unrecorded'>,
  ) {
    const s = this.style;
    this.print(
      `${s.bold(`poolctl ${command}`)} ${s.dim('·')} ${targetLabel} ${s.dim('·')} ${serverVersion}`,
    );
    this.print(
      s.dim(
        `runbook ${this.runbook.id} · incident ${incident} · transcript ${transcriptText(transcript)}`,
      ),
    );
    this.print();
  }

  stepStarted(step: Step) {
    if (this.io.isStderrTTY) this.spinner = startSpinner(this.io.err, step.title);
  }

  async metrics(metrics: Metrics) {
    if (this.headlineShown) return;
    this.headlineShown = true;
    this.stopSpinner();
    this.print(this.headline(metrics));
    this.print();
  }

  /** "96.3% full": the first thing a half-awake operator needs to see. */
  headline(m: Metrics): string {
    const s = this.style;
    const pct = m.utilization_percent;
    const critical = Number(this.values.utilization_critical ?? 95);
    const warning = Number(this.values.utilization_warning ?? 90);
    const exported = m.exporter_utilization_percent;
    if (pct === undefined && exported !== undefined) {
      // Refused by the server: its exporter's numbers, said to be the exporter's.
      const paintE =
        exported >= critical ? s.red.bold : exported >= warning ? s.yellow.bold : s.green.bold;
      return `${paintE(`● ${percent(exported)} full`)} (from its exporter; the server refused poolctl): ${m.exporter_connections} of ${m.exporter_usable_connections} usable connections in use`;
    }
    // A missing number is shown as missing, never as 0% (which would read as an empty server).
    if (pct === undefined) return s.red.bold('● utilization unknown: the server did not say');
    const hidden = m.state_hidden
      ? `, ${m.state_hidden} whose state poolctl's role cannot see`
      : '';
    const paint = pct >= critical ? s.red.bold : pct >= warning ? s.yellow.bold : s.green.bold;
    return (
      `${paint(`● ${percent(pct)} full`)}: ${m.connections} of ${m.usable_connections} usable connections in use ` +
      `(max_connections ${m.max_connections}) — ${m.active} active, ${m.idle} idle, ` +
      `${m.idle_in_transaction} idle in transaction${hidden}`
    );
  }

  async stepFinished(outcome: StepOutcome) {
    this.stopSpinner();
    const s = this.style;
    if (outcome.manual !== undefined) return; // listed under "to do by hand" in the summary
    // The mark says what the findings say: a step whose rows raised a warning (five long queries
    // where none are expected) is not shown as passed.
    const worst = outcome.findings.some((f) => f.severity === 'critical')
      ? 'critical'
      : outcome.findings.some((f) => f.severity === 'warning')
        ? 'warning'
        : undefined;
    const mark =
      outcome.status === 'failed' || worst === 'critical'
        ? s.red('✖')
        : outcome.status === 'skipped'
          ? s.dim('–')
          : worst === 'warning'
            ? s.yellow('!')
            : s.green('✔');
    if (outcome.status === 'skipped' && outcome.error) {
      // Not run (the server refused poolctl): one line each, the refusal is said once below.
      this.print(`${mark} ${s.bold(outcome.title)} ${s.dim(`(${outcome.error})`)}`);
      return;
    }
    this.print(`${mark} ${s.bold(outcome.title)} ${s.dim(`(${outcome.durationMs} ms)`)}`);
    this.print(indent(s.dim(outcome.why)));
    if (outcome.error) this.print(indent(s.red(outcome.error)));
    const rowsText = outcome.rows ? await this.rowsText(outcome) : '';
    if (rowsText) this.print(indent(rowsText));
    for (const f of outcome.findings) this.print(indent(this.findingLine(f)));
    this.print();
  }

  private async rowsText(outcome: StepOutcome): Promise<string> {
    const rows = outcome.rows ?? [];
    const step = [...this.runbook.diagnose, ...this.runbook.verify].find(
      (st) => st.id === outcome.id,
    );
    if (rows.length === 0) return this.style.dim('none');
    if (step?.kind === 'query' && step.metrics && rows.length === 1) {
      // The headline already said it; the full record is in the JSON document and transcript.
      return this.headlineShown ? '' : renderRecord(rows[0]!, this.style);
    }
    const trend = step?.kind === 'promql' && step.trend === true;
    // A trend's points are drawn below the table, not printed in a cell.
    const columns =
      ((step?.kind === 'query' || step?.kind === 'promql' || step?.kind === 'kubectl') &&
        step.columns) ||
      Object.keys(rows[0]!).filter((c) => !(trend && c === 'points'));
    const maxRows = (step?.kind === 'query' && step.maxRows) || 10;
    const shown = rows.slice(0, maxRows);
    const table = await renderTable(shown, {
      columns,
      boxed: this.io.isStdoutTTY,
      style: this.style,
      maxCellWidth: this.io.isStdoutTTY ? 60 : 100,
    });
    const more = rows.length - shown.length;
    const all =
      more > 0
        ? `${table}\n${this.style.dim(`… and ${more} more (all of them in --output json)`)}`
        : table;
    if (step?.kind === 'kubectl' && step.parse === 'logs') return `${all}\n${logLines(rows)}`;
    return trend ? `${all}\n${await trendCharts(rows, this.style)}` : all;
  }

  private findingLine(f: Finding): string {
    return `${severityLabel(this.style, f.severity)} ${f.message}`;
  }

  summary(input: SummaryInput) {
    const s = this.style;
    const { result, status } = input;
    this.print(s.bold('Summary'));
    this.print(indent(`Status: ${statusText(s, status)}`));
    if (input.sides?.explanation) this.print(indent(s.bold(input.sides.explanation)));
    for (const reason of result.unmeasured) this.print(indent(s.red(`Not measured: ${reason}`)));
    const m = result.metrics;
    if (m.app_pool_utilization_percent !== undefined) {
      const wait =
        m.app_pool_wait_p95_ms !== undefined
          ? ` · slowest wait p95 ${m.app_pool_wait_p95_ms} ms`
          : '';
      this.print(
        indent(`Application pools: fullest replica ${m.app_pool_utilization_percent}%${wait}`),
      );
    }
    if (input.sides && !input.sides.applicationAsked) this.print(indent(s.dim(DATABASE_ONLY)));
    if (m.exporter_utilization_percent !== undefined) {
      const own = m.utilization_percent === undefined ? ' (poolctl could not read it itself)' : '';
      this.print(indent(`Server from its exporter: ${exporterNumbers(m)}${own}`));
    }
    if (m.utilization_percent !== undefined) {
      this.print(
        indent(
          `Utilization ${m.utilization_percent}% · busy ${m.busy_percent}% · ${m.connections} connections ` +
            `(${m.active} active, ${m.idle} idle, ${m.idle_in_transaction} idle in transaction) · ` +
            `max ${m.max_connections}, usable ${m.usable_connections}`,
        ),
      );
    }
    const holders = result.steps.find((st) => st.id === 'holders')?.rows ?? [];
    if (holders.length > 0) {
      const top = holders
        .slice(0, 3)
        .map(
          (h) =>
            `${cellText(h.application, 30)} (${cellText(h.user, 20)}@${cellText(h.client, 40)}) ${h.connections}`,
        )
        .join(' · ');
      this.print(indent(`Top holders: ${top}`));
    }
    if (result.stoppedEarly) this.print(indent(s.yellow('Stopped early: not every step ran.')));

    const findings = bySeverity(result.findings);
    this.print();
    this.print(s.bold('Findings'));
    if (findings.length === 0 && status === 'healthy')
      this.print(indent(s.green('none: the pool looks healthy')));
    for (const f of findings) this.print(indent(this.findingLine(f)));

    if (input.suggestions.length > 0) {
      this.print();
      this.print(s.bold('What to do next (best first)'));
      input.suggestions.forEach((sug, i) => {
        this.print(indent(`${i + 1}. ${s.bold(sug.title)} [${sug.id}]: ${sug.summary}`));
        this.print(indent(s.cyan(sug.command), 5));
        const lower = sug.lower_threshold;
        if (lower) {
          this.print(
            indent(
              s.yellow(
                `or with the lower threshold ${lower.set} (the default matches nothing; this selects ${lower.matches}: more than the default, your call; without --yes it shows them and asks):`,
              ),
              5,
            ),
          );
          this.print(indent(s.cyan(lower.command), 5));
        }
      });
    }

    const manual = result.steps.filter((st) => st.manual === 'pending');
    if (manual.length > 0) {
      this.print();
      this.print(s.bold('To do by hand'));
      for (const st of manual) {
        this.print(indent(`- ${st.title}`));
        this.print(indent(s.cyan(st.command ?? ''), 4));
        if (st.flag)
          this.print(indent(s.dim(`(poolctl can run this itself, given ${st.flag})`), 4));
      }
    }
    this.print();
    this.print(s.dim(`Transcript: ${transcriptText(input.transcript)}`));
  }

  /**
   * After verify: did the pool recover? Only `healthy` is a recovery: every check of the verify
   * phase passed, from numbers poolctl could see. verify exits 4 on anything else.
   */
  verdict(status: HealthStatus, verified: PhaseResult, applicationChecked = true) {
    const s = this.style;
    const m = verified.metrics;
    if (!applicationChecked) this.print(s.dim(DATABASE_ONLY));
    if (status === 'unknown') {
      const why = verified.unmeasured.join('; ');
      this.print(s.red.bold(`? Not verified: ${why}; poolctl does not call this recovered`));
      return;
    }
    const app =
      m.app_pool_utilization_percent !== undefined
        ? `; the fullest application pool ${percent(m.app_pool_utilization_percent)}`
        : '';
    // Refused by the server, poolctl has only its exporter's numbers: they are named as such.
    const server =
      m.utilization_percent === undefined && m.exporter_utilization_percent !== undefined
        ? `from the exporter ${exporterNumbers(m)}`
        : `utilization ${percent(m.utilization_percent)} (${m.connections} of ${m.usable_connections})`;
    const numbers = `${server}${app}`;
    if (status === 'healthy') {
      this.print(s.green.bold(`✔ Recovered: ${numbers}`));
      return;
    }
    const failed = verified.findings.filter((f) => f.severity !== 'info').length;
    this.print(
      s.red.bold(
        `✖ Not recovered yet: ${numbers}; ${failed} check${failed === 1 ? '' : 's'} above failed`,
      ),
    );
  }

  stopSpinner() {
    this.spinner?.stop();
    this.spinner = undefined;
  }
}

/** "100.0% (97 of 97 usable connections)": the server as its exporter reports it. */
function exporterNumbers(m: Metrics): string {
  return `${percent(m.exporter_utilization_percent)} (${m.exporter_connections} of ${m.exporter_usable_connections} usable connections)`;
}

/** The matching log lines under the per-pod counts: each pod's last few, prefixed by the pod. */
function logLines(rows: StepOutcome['rows'] & object, perPod = 5): string {
  const lines = rows.flatMap((row) => {
    const matched = Array.isArray(row.lines) ? (row.lines as string[]) : [];
    const shown = matched
      .slice(-perPod)
      .map((line) => `${cellText(row.pod, 40)}: ${cellText(line, 160)}`);
    const more = (typeof row.matches === 'number' ? row.matches : matched.length) - shown.length;
    return more > 0 ? [...shown, `${cellText(row.pod, 40)}: … and ${more} earlier`] : shown;
  });
  return lines.join('\n');
}

/** Said wherever a verdict rests on the server alone. */
export const DATABASE_ONLY =
  "Checked the database side only: pass --prometheus URL to check the application's pools too.";

function statusText(s: ChalkInstance, status: HealthStatus): string {
  const text = status.toUpperCase();
  if (status === 'critical') return s.red.bold(text);
  if (status === 'unknown') return s.red.bold(`${text} (not measured; not healthy)`);
  if (status === 'warning') return s.yellow.bold(text);
  return s.green.bold(text);
}
