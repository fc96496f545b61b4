import { UsageError } from '../errors.js';
import { sanitizeInline } from '../io/sanitize.js';
import { bindParameters } from '../runbook/params.js';
import {
  isStatementTemplate,
  renderStatement,
  statementOf,
} from '../runbook/statement-template.js';
import { parametersOf, renderArgs, shellLine } from '../runbook/render.js';
import type { ChangeStep, Runbook } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import type { ActionRecord, CommandResult, MitigationContext } from '../wizard/mitigation.js';
import { measureServer } from '../wizard/measure.js';
import type { DestructiveExecutor, Preview } from './types.js';

type KubernetesChange = Extract<ChangeStep, { target: 'kubernetes' }>;
type DatabaseChange = Extract<ChangeStep, { target: 'database' }>;

/** A rollout may take minutes; a kubectl call that takes longer than this has hung. */
const CHANGE_TIMEOUT_MS = 300_000;

/**
 * Changes to the systems around the pool: kubectl commands (restart, scale the application,
 * point a Service at the replicas) and database settings (SET GLOBAL max_connections). The
 * preview shows the exact argv (with the context and namespace every call carries) or the setting
 * as current → new; the effect is confirmed by the step's `wait` or by reading the setting back.
 */
export const changeExecutor: DestructiveExecutor<ChangeStep> = {
  role: 'destructive',

  async preview(step, ctx, record) {
    refuseUnsafeChange(step, ctx);
    record.before = (await measureQuietly(ctx))?.metrics;
    return step.target === 'kubernetes'
      ? previewKubernetes(step, ctx)
      : previewDatabase(step, ctx, record);
  },

  async apply(step, preview, ctx, record) {
    if (step.target === 'kubernetes') await applyKubernetes(step, preview, ctx, record);
    else await applyDatabase(step, preview, ctx, record);
  },
};

/**
 * Exit 2, before anything is asked or done, for a change poolctl must not guess at: a kubectl
 * change without a named context (the kubectl on PATH may point at any cluster), or a number it
 * would set that nobody gave (`replicas`' default is the seed's example, not this deployment's:
 * scaling 10 replicas "up" to 3 would be an outage).
 */
export function refuseUnsafeChange(
  step: ChangeStep,
  ctx: { runbook: Runbook; targets: Targets; given: string[] },
): void {
  if (step.target === 'kubernetes' && !ctx.targets.specs.kubernetes?.context) {
    throw new UsageError(
      `--action ${step.id} changes the cluster: name it with --kube-context NAME (poolctl never changes the cluster kubectl's current context happens to point at); nothing was done`,
    );
  }
  const numbers = parametersOf(step).filter(
    (name) => ctx.runbook.parameters[name]?.type === 'integer' && !ctx.given.includes(name),
  );
  if (numbers.length > 0) {
    throw new UsageError(
      `--action ${step.id} sets ${numbers.join(', ')}: pass ${numbers.map((n) => `--set ${n}=N`).join(' ')} (a default is an example, not your number); nothing was done`,
    );
  }
}

/** Before-numbers where the database answers; a change through kubectl does not need them. */
async function measureQuietly(ctx: MitigationContext) {
  try {
    return await measureServer(ctx);
  } catch {
    return undefined;
  }
}

async function previewKubernetes(step: KubernetesChange, ctx: MitigationContext): Promise<Preview> {
  const kubernetes = await ctx.targets.kubernetes();
  const render = (args: string[]) =>
    kubernetes.argv(renderArgs(args, ctx.values, ctx.runbook.parameters));
  const commands = step.commands.map(render);
  const lines = [...commands.map(shellLine), `then confirms with: ${shellLine(render(step.wait))}`];
  await ctx.reporter.change(step, lines);
  return {
    count: commands.length,
    noun: 'command',
    verb: 'run',
    intent: {
      type: 'change.intent',
      step: step.id,
      title: step.title,
      target: 'kubernetes',
      commands,
    },
  };
}

async function applyKubernetes(
  step: KubernetesChange,
  preview: Preview,
  ctx: MitigationContext,
  record: ActionRecord,
) {
  const kubernetes = await ctx.targets.kubernetes();
  const timeoutMs = ctx.changeTimeoutMs ?? CHANGE_TIMEOUT_MS;
  const results: CommandResult[] = (record.commands = []);
  const done = (result: CommandResult) => {
    results.push(result);
    ctx.transcript.append({ type: 'change.outcome', step: step.id, ...result });
  };
  const argvs = preview.intent.type === 'change.intent' ? (preview.intent.commands ?? []) : [];
  for (const [i, args] of step.commands.entries()) {
    // Ctrl-C is looked at between commands only: a kubectl call killed mid-way may have been
    // applied by the API server already, and its outcome would be unknowable.
    if (ctx.signal.aborted) {
      record.stoppedEarly = true;
      return;
    }
    const rendered = renderArgs(args, ctx.values, ctx.runbook.parameters);
    try {
      const { stdout } = await kubernetes.run(rendered, { timeoutMs });
      done({ command: argvs[i]!, status: 'done', detail: lastLine(stdout) });
    } catch (err) {
      // A failed command stops the change: the next one assumed this one's effect.
      done({
        command: argvs[i]!,
        status: 'failed',
        detail: sanitizeInline((err as Error).message),
      });
      return;
    }
  }
  if (ctx.signal.aborted) {
    record.stoppedEarly = true;
    return;
  }
  // Waiting is safe to stop: Ctrl-C ends the wait, and the effect is then not confirmed.
  const wait = renderArgs(step.wait, ctx.values, ctx.runbook.parameters);
  const command = kubernetes.argv(wait);
  try {
    const { stdout } = await kubernetes.run(wait, { timeoutMs, signal: ctx.signal });
    const seen = lastLine(stdout);
    const confirmed = step.expect === undefined || new RegExp(step.expect).test(stdout.trim());
    done({
      command,
      status: confirmed ? 'confirmed' : 'not-confirmed',
      detail: confirmed ? seen : `expected ${step.expect}, read ${seen ?? 'nothing'}`,
    });
  } catch (err) {
    done({ command, status: 'not-confirmed', detail: sanitizeInline((err as Error).message) });
  }
}

async function previewDatabase(
  step: DatabaseChange,
  ctx: MitigationContext,
  record: ActionRecord,
): Promise<Preview> {
  const current = await readSetting(step, ctx);
  const next = String(ctx.values[step.params[0]!] ?? '');
  if (Number(next) < Number(current.value)) {
    throw new UsageError(
      `--action ${step.id} would lower ${current.name} from ${current.value} to ${next}: it only raises; nothing was done`,
    );
  }
  record.setting = { name: current.name, current: current.value, next };
  // A template (ALTER DATABASE {database} …) is shown and sent as rendered; else bound.
  const template = isStatementTemplate(step.sql);
  const statement = template
    ? renderStatement(step.sql, await quotedDatabase(ctx), ctx.values, ctx.runbook.parameters)
    : step.sql.trim().replace(/;$/, '');
  const target = await ctx.targets.database();
  // SET GLOBAL is lost at a restart: the line that keeps it (MySQL 8 also has SET PERSIST).
  const persist =
    target.engine === 'mysql' && /^SET\s+GLOBAL/i.test(statementOf(step.sql))
      ? [`to keep it after a restart, add to my.cnf under [mysqld]: ${current.name} = ${next}`]
      : [];
  await ctx.reporter.change(step, [
    `${current.name}: ${current.value} → ${next}`,
    `${statement}  -- ${step.params.map((p) => `${p} = ${String(ctx.values[p])}`).join(', ')}`,
    ...persist,
  ]);
  return {
    // Nothing to change when the setting already has the value asked for.
    count: current.value === next ? 0 : 1,
    noun: 'setting',
    verb: 'change',
    intent: {
      type: 'change.intent',
      step: step.id,
      title: step.title,
      target: 'database',
      setting: { name: current.name, current: current.value, next, statement },
    },
  };
}

async function applyDatabase(
  step: DatabaseChange,
  preview: Preview,
  ctx: MitigationContext,
  record: ActionRecord,
) {
  const target = await ctx.targets.database();
  const statement =
    preview.intent.type === 'change.intent' ? (preview.intent.setting?.statement ?? '') : '';
  const command = [statement];
  const done = (result: CommandResult) => {
    record.commands = [result];
    ctx.transcript.append({ type: 'change.outcome', step: step.id, ...result });
  };
  try {
    if (isStatementTemplate(step.sql)) await target.change(statement, []);
    else await target.change(step.sql, bindParameters(step.params, ctx.values));
  } catch (err) {
    done({ command, status: 'failed', detail: sanitizeInline((err as Error).message) });
    return;
  }
  // The effect, read back: the server's value now, not the statement's success.
  const after = await readSetting(step, ctx);
  record.setting = { ...record.setting!, after: after.value };
  const confirmed = after.value === record.setting.next;
  done({
    command,
    status: confirmed ? 'confirmed' : 'not-confirmed',
    detail: `${after.name} is ${after.value}`,
  });
}

/** The connected database's name as the server quotes an identifier, for a template's `{database}`. */
async function quotedDatabase(ctx: MitigationContext): Promise<string> {
  const target = await ctx.targets.database();
  const sql =
    target.engine === 'postgres'
      ? 'SELECT quote_ident(current_database()) AS q'
      : "SELECT CONCAT('`', REPLACE(DATABASE(), '`', '``'), '`') AS q";
  const [row] = await target.query(sql, []);
  if (typeof row?.q !== 'string') throw new UsageError(`${ctx.runbook.id}: no database selected`);
  return row.q;
}

async function readSetting(step: DatabaseChange, ctx: MitigationContext) {
  const target = await ctx.targets.database();
  const [row] = await target.query(step.readSql, []);
  if (!row || row.setting === undefined || row.value === undefined) {
    throw new Error(`${step.title}: ${step.readFile} returned no setting and value`);
  }
  return { name: String(row.setting), value: String(row.value) };
}

/** kubectl's last word: `deployment "api" successfully rolled out` after the progress lines. */
function lastLine(text: string): string | undefined {
  const line = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1);
  return line === undefined ? undefined : sanitizeInline(line.trim());
}
