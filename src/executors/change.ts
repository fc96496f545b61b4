import { UsageError } from '../errors.js';
import { sanitizeInline } from '../io/sanitize.js';
import { bindParameters } from '../runbook/params.js';
import { parametersOf, renderArgs, shellLine, withoutUnsetFlags } from '../runbook/render.js';
import {
  isStatementTemplate,
  renderStatement,
  statementOf,
} from '../runbook/statement-template.js';
import type { ChangeStep, Runbook, Step } from '../runbook/types.js';
import type { Targets } from '../targets/set.js';
import type { ActionRecord, CommandResult, MitigationContext } from '../wizard/mitigation.js';
import { measureServer } from '../wizard/measure.js';
import { measureApplication } from '../wizard/measure-app.js';
import { capacityAfter, capacityCaution, capacityLine, movesCapacity } from './capacity-guard.js';
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
    const server = await measureQuietly(ctx);
    // The application's pools too, for a change to the cluster: its before/after is theirs.
    const app = step.target === 'kubernetes' ? await measureApplication(ctx) : undefined;
    if (server || app) record.before = { ...server?.metrics, ...app?.metrics };
    return step.target === 'kubernetes'
      ? previewKubernetes(step, ctx, record)
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
  const specs = ctx.runbook.parameters;
  const hasValue = (name: string) => ctx.given.includes(name) || specs[name]?.default !== undefined;
  // An optional flag whose parameter has no value is left out (kubectl's default applies).
  const sent =
    step.target === 'kubernetes'
      ? { ...step, commands: step.commands.map((c) => withoutUnsetFlags(c, hasValue)) }
      : step;
  const used = parametersOf(sent).filter((name) => Object.hasOwn(specs, name));
  const numbers = used.filter(
    (name) => specs[name]?.type === 'integer' && !ctx.given.includes(name),
  );
  if (numbers.length > 0) {
    throw new UsageError(
      `--action ${step.id} sets ${numbers.join(', ')}: pass ${numbers.map((n) => `--set ${n}=N`).join(' ')} (a default is an example, not your number); nothing was done`,
    );
  }
  // A parameter with no value would reach kubectl as `<PARAM>`.
  const missing = used.filter((name) => !hasValue(name));
  if (missing.length > 0) {
    throw new UsageError(
      `--action ${step.id} needs ${missing.join(', ')}: pass ${missing.map((n) => `--set ${n}=VALUE`).join(' ')}; nothing was done`,
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

async function previewKubernetes(
  step: KubernetesChange,
  ctx: MitigationContext,
  record: ActionRecord,
): Promise<Preview> {
  const kubernetes = await ctx.targets.kubernetes();
  const render = (args: string[]) =>
    kubernetes.argv(renderArgs(args, ctx.values, ctx.runbook.parameters));
  const commands = sentCommands(step, ctx).map(render);
  refuseBrokenJson(step, commands);
  const lines = [...commands.map(shellLine), `then confirms with: ${shellLine(render(step.wait))}`];
  // RUNBOOK-006 Prevention 1: more replicas or bigger pools may ask more of the database than it
  // has; the arithmetic is shown, and an oversubscription needs a second, explicit yes.
  let caution: string | undefined;
  if (movesCapacity(step)) {
    record.capacity = await capacityAfter(step, ctx, record.before);
    lines.push(capacityLine(record.capacity));
    caution = capacityCaution(record.capacity);
  }
  await ctx.reporter.change(step, lines);
  return {
    count: commands.length,
    noun: 'command',
    verb: 'run',
    ...(caution !== undefined && { caution }),
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
  for (const [i, args] of sentCommands(step, ctx).entries()) {
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
  if (current.refused !== undefined) {
    throw new UsageError(`${step.title}: ${current.refused}; nothing was done`);
  }
  const next = String(ctx.values[step.params[0]!] ?? '');
  if (Number(next) < Number(current.value)) {
    throw new UsageError(
      `--action ${step.id} would lower ${current.name} from ${current.value} to ${next}: it only raises; nothing was done`,
    );
  }
  record.setting = { name: current.name, current: current.value, next };
  const composed = composes(step) ? await composeStatement(step, ctx) : undefined;
  // A template (ALTER DATABASE {database} …) is shown and sent as rendered; else bound.
  const template = isStatementTemplate(step.sql);
  const statement =
    composed ??
    (template
      ? renderStatement(step.sql, await quotedDatabase(ctx), ctx.values, ctx.runbook.parameters)
      : step.sql.trim().replace(/;$/, ''));
  const target = await ctx.targets.database();
  // SET GLOBAL is lost at a restart: the line that keeps it (MySQL 8 also has SET PERSIST).
  const persist =
    target.engine === 'mysql' && /^SET\s+GLOBAL/i.test(statementOf(step.sql))
      ? [`to keep it after a restart, add to my.cnf under [mysqld]: ${current.name} = ${next}`]
      : [];
  const bound = step.params.map((p) => `${p} = ${String(ctx.values[p])}`).join(', ');
  await ctx.reporter.change(step, [
    `${current.name}: ${current.value} → ${next}`,
    composed ? statement : `${statement}  -- ${bound}`,
    ...persist,
    ...(current.running !== undefined
      ? [
          `takes effect only after a restart: the server runs with ${current.name} = ${current.running} until PostgreSQL restarts, and the restart drops every session`,
        ]
      : []),
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
    // A composed or rendered statement is run as shown (its values were bound or parsed before).
    if (composes(step) || isStatementTemplate(step.sql)) await target.change(statement, []);
    else await target.change(step.sql, bindParameters(step.params, ctx.values));
  } catch (err) {
    // An error is not proof that nothing changed: a statement sent to a server that then stopped
    // answering (or dropped the connection) may have been applied. Only a read-back that still
    // shows the old value makes it 'failed'; without one the outcome is unknown, and said so.
    const message = sanitizeInline((err as Error).message);
    const seen = await readSetting(step, ctx).catch(() => undefined);
    if (seen === undefined || seen.value !== record.setting?.current) {
      if (seen) record.setting = { ...record.setting!, after: seen.value };
      done({
        command,
        status: 'not-confirmed',
        detail: seen
          ? `${message}; yet ${seen.name} now reads ${seen.value}`
          : `${message}; whether it was applied is unknown (the setting could not be read back): read ${record.setting?.name ?? 'it'} before running it again`,
      });
      return;
    }
    done({ command, status: 'failed', detail: message });
    return;
  }
  // The effect, read back: the server's value now, not the statement's success.
  const after = await readSetting(step, ctx);
  record.setting = { ...record.setting!, after: after.value };
  const confirmed = after.value === record.setting.next;
  const pending =
    after.running !== undefined && after.running !== after.value
      ? ` in the configuration; the server runs with ${after.running} until PostgreSQL restarts`
      : '';
  done({
    command,
    status: confirmed ? 'confirmed' : 'not-confirmed',
    detail: `${after.name} is ${after.value}${pending}`,
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
  const [row] = await target.query(step.readSql, step.readArgs);
  if (!row || row.setting === undefined || row.value === undefined) {
    throw new Error(`${step.title}: ${step.readFile} returned no setting and value`);
  }
  return {
    name: String(row.setting),
    value: String(row.value),
    // A setting read only at start: what the server enforces until it restarts.
    ...(row.running !== undefined && row.running !== null && { running: String(row.running) }),
    // Why this account may not change it (the read says so where the server can tell).
    ...(typeof row.refused === 'string' && { refused: sanitizeInline(row.refused) }),
  };
}

/**
 * Why the account may not make this database change (ALTER DATABASE by a role that neither owns
 * the database nor is a superuser), read before anything is offered; undefined when it may, or
 * when the step's read cannot tell.
 */
export async function changeRefusal(
  step: Step,
  ctx: MitigationContext,
): Promise<string | undefined> {
  if (step.kind !== 'change' || step.target !== 'database') return undefined;
  return (await readSetting(step, ctx)).refused;
}

/**
 * A statement that takes no bound parameter (PostgreSQL's ALTER SYSTEM) is composed by the server
 * instead: the step's SQL is then a SELECT returning one `statement`, built from the bound values.
 */
function composes(step: DatabaseChange): boolean {
  const code = step.sql
    .split('\n')
    .filter((line) => !/^\s*--/.test(line))
    .join('\n');
  return /^\s*SELECT\b/i.test(code);
}

async function composeStatement(step: DatabaseChange, ctx: MitigationContext): Promise<string> {
  const target = await ctx.targets.database();
  const [row] = await target.query(step.sql, bindParameters(step.params, ctx.values));
  if (typeof row?.statement !== 'string') {
    throw new Error(`${step.title}: ${step.sqlFile} returned no statement`);
  }
  return row.statement;
}

/**
 * Exit 2 for a JSON argument (a patch) that a --set value broke: a `"` or a backslash in a value
 * would end the string early and patch something else than what the runbook says.
 */
function refuseBrokenJson(step: KubernetesChange, commands: string[][]): void {
  for (const arg of commands.flat()) {
    if (!arg.startsWith('{')) continue;
    try {
      JSON.parse(arg);
    } catch {
      throw new UsageError(
        `--action ${step.id}: a --set value breaks the JSON of its patch (a " or a \\ in it?): ${sanitizeInline(arg)}; nothing was done`,
      );
    }
  }
}

/** The step's commands as sent: optional flags whose parameter has no value left out. */
function sentCommands(step: KubernetesChange, ctx: MitigationContext): string[][] {
  return step.commands.map((c) => withoutUnsetFlags(c, (name) => ctx.values[name] !== undefined));
}

/** kubectl's last word: `deployment "api" successfully rolled out` after the progress lines. */
function lastLine(text: string): string | undefined {
  const line = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1);
  return line === undefined ? undefined : sanitizeInline(line.trim());
}
