import { bindParameters } from '../runbook/params.js';
import { renderArgs, shellLine } from '../runbook/render.js';
import type { ChangeStep } from '../runbook/types.js';
import type { ActionRecord, CommandResult, MitigationContext } from '../wizard/mitigation.js';
import { measureServer } from '../wizard/measure.js';
import type { DestructiveExecutor, Preview } from './types.js';

type KubernetesChange = Extract<ChangeStep, { target: 'kubernetes' }>;
type DatabaseChange = Extract<ChangeStep, { target: 'database' }>;

/** A rollout may take minutes; a kubectl call that takes longer than this has hung. */
const CHANGE_TIMEOUT_MS = 300_000;

/**
 * Changes to the systems around the pool: kubectl commands (restart, roll back, scale the
 * application) and database settings (SET GLOBAL max_connections). The preview shows the exact
 * argv (with the context and namespace every call carries) or the setting as current → new.
 */
export const changeExecutor: DestructiveExecutor<ChangeStep> = {
  role: 'destructive',

  async preview(step, ctx, record) {
    record.before = (await measureQuietly(ctx))?.metrics;
    return step.target === 'kubernetes'
      ? previewKubernetes(step, ctx)
      : previewDatabase(step, ctx, record);
  },

  async apply(step, preview, ctx, record) {
    if (step.target === 'kubernetes') await applyKubernetes(step, preview, ctx, record);
    else await applyDatabase(step, ctx, record);
  },
};

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
  const lines = commands.map(shellLine);
  if (step.wait) lines.push(`then waits for: ${shellLine(render(step.wait))}`);
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
    if (ctx.signal.aborted) {
      record.stoppedEarly = true;
      return;
    }
    const rendered = renderArgs(args, ctx.values, ctx.runbook.parameters);
    try {
      const { stdout } = await kubernetes.run(rendered, { timeoutMs, signal: ctx.signal });
      done({ command: argvs[i]!, status: 'done', detail: lastLine(stdout) });
    } catch (err) {
      // A failed command stops the change: the next one assumed this one's effect.
      done({ command: argvs[i]!, status: 'failed', detail: (err as Error).message });
      return;
    }
  }
  if (!step.wait || ctx.signal.aborted) return;
  const wait = renderArgs(step.wait, ctx.values, ctx.runbook.parameters);
  try {
    const { stdout } = await kubernetes.run(wait, { timeoutMs, signal: ctx.signal });
    done({ command: kubernetes.argv(wait), status: 'confirmed', detail: lastLine(stdout) });
  } catch (err) {
    done({
      command: kubernetes.argv(wait),
      status: 'not-confirmed',
      detail: (err as Error).message,
    });
  }
}

async function previewDatabase(
  step: DatabaseChange,
  ctx: MitigationContext,
  record: ActionRecord,
): Promise<Preview> {
  const target = await ctx.targets.database();
  const current = await readSetting(step, ctx);
  const next = String(ctx.values[step.params[0]!] ?? '');
  record.setting = { name: current.name, current: current.value, next };
  const statement = `${step.sql.trim().replace(/;$/, '')}  -- with ${step.params
    .map((p) => `${p} = ${String(ctx.values[p])}`)
    .join(', ')}`;
  await ctx.reporter.change(step, [`${current.name}: ${current.value} → ${next}`, statement]);
  void target;
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

async function applyDatabase(step: DatabaseChange, ctx: MitigationContext, record: ActionRecord) {
  const target = await ctx.targets.database();
  const command = [step.sql.trim()];
  try {
    await target.change(step.sql, bindParameters(step.params, ctx.values));
    ctx.transcript.append({ type: 'change.outcome', step: step.id, command, status: 'done' });
  } catch (err) {
    const result = { command, status: 'failed' as const, detail: (err as Error).message };
    record.commands = [result];
    ctx.transcript.append({ type: 'change.outcome', step: step.id, ...result });
    return;
  }
  // The effect, read back: the server's value now, not the statement's success.
  const after = await readSetting(step, ctx);
  record.setting = { ...record.setting!, after: after.value };
  const confirmed = after.value === record.setting.next;
  const result: CommandResult = {
    command,
    status: confirmed ? 'confirmed' : 'not-confirmed',
    detail: `${after.name} is ${after.value}`,
  };
  record.commands = [result];
  ctx.transcript.append({ type: 'change.outcome', step: step.id, ...result });
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
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1)
    ?.trim();
}
