import { bindParameters, renderTemplate } from '../runbook/params.js';
import type { TerminateStep } from '../runbook/types.js';
import { executeKill, type VictimResult } from '../safety/kill.js';
import { selectVictims } from '../safety/selection.js';
import type { KillMode } from '../targets/types.js';
import type { ActionRecord, MitigationContext } from '../wizard/mitigation.js';
import { measureServer } from '../wizard/measure.js';
import { refuseBlindKill } from '../wizard/visibility.js';
import type { DestructiveExecutor, IntentDraft } from './types.js';

/**
 * Session kills (terminate steps): the victims the step's SQL selects, minus every protected
 * session, signalled in batches that each re-check their victims at execution time.
 */
export const killExecutor: DestructiveExecutor<TerminateStep> = {
  role: 'destructive',

  async preview(step, ctx, record) {
    record.mode = step.mode;
    const target = await ctx.targets.database();
    // One read gives both the before-numbers and the visibility check: every path to a kill
    // (--action, the wizard's offer) refuses one it cannot see to choose.
    const before = await measureServer(ctx);
    refuseBlindKill(step.id, before);
    record.before = before.metrics;
    record.measured = before;
    const candidates = await target.candidates({
      sql: step.sql,
      params: bindParameters(step.params, ctx.values),
    });
    const selection = selectVictims(candidates, {
      ownSessionId: target.info.ownSessionId,
      protection: ctx.protection,
      maxVictims: ctx.maxVictims,
    });
    record.victims = selection.victims;
    record.spared = selection.spared.map(({ session, reason }) => ({
      pid: session.pid,
      user: session.user,
      application: session.application,
      reason,
    }));
    const criteria = step.params.map(
      (name) => `${name} = ${renderTemplate(`{${name}}`, ctx.values, ctx.runbook.parameters)}`,
    );
    await ctx.reporter.victims(step, selection, criteria);
    return {
      count: selection.victims.length,
      noun: 'session',
      verb: verbFor(step.mode),
      intent: intentFor(step, step.mode, selection.victims),
    };
  },

  async apply(step, _preview, ctx, record, commit) {
    const report = await kill(step, step.mode, record, ctx);
    record.results = report.results;
    record.stoppedEarly = report.stoppedEarly;
    if (step.mode === 'cancel' && ctx.escalateAfterS !== undefined && !ctx.signal.aborted) {
      await escalate(step, record, ctx, commit);
    }
  },
};

function verbFor(mode: KillMode): string {
  return mode === 'cancel' ? 'cancel the queries of' : 'terminate';
}

function intentFor(step: TerminateStep, mode: KillMode, victims: ActionRecord['victims']) {
  return {
    type: 'intent',
    step: step.id,
    title: step.title,
    mode,
    ...(mode !== step.mode ? { escalation: true } : {}),
    victims,
  } satisfies IntentDraft;
}

async function kill(
  step: TerminateStep,
  mode: KillMode,
  record: ActionRecord,
  ctx: MitigationContext,
  victims = record.victims,
) {
  return executeKill({
    target: await ctx.targets.database(),
    sql: step.sql,
    params: bindParameters(step.params, ctx.values),
    mode,
    victims,
    protection: ctx.protection,
    timeoutMs:
      mode === 'cancel' && ctx.escalateAfterS !== undefined
        ? ctx.escalateAfterS * 1000
        : ctx.killTimeoutMs,
    signal: ctx.signal,
    onResults: (results: VictimResult[]) => {
      if (results.length > 0)
        ctx.transcript.append({ type: 'outcome', step: step.id, mode, results });
    },
  });
}

/** Cancel first; terminate only the victims whose statement is still running after the grace. */
async function escalate(
  step: TerminateStep,
  record: ActionRecord,
  ctx: MitigationContext,
  commit: (intent: IntentDraft) => void,
) {
  const stuck = new Set(
    record.results.filter((r) => r.outcome === 'still-there').map((r) => r.pid),
  );
  if (stuck.size === 0) return;
  const victims = record.victims.filter((s) => stuck.has(s.pid));
  ctx.reporter.notice(
    `${victims.length} still running after the cancel: terminating them (--escalate)`,
  );
  commit(intentFor(step, 'terminate', victims));
  const report = await kill(step, 'terminate', record, ctx, victims);
  const escalated = new Map(report.results.map((r) => [r.pid, r]));
  record.results = record.results.map((r) => {
    const e = escalated.get(r.pid);
    return e ? { ...e, reason: e.reason ?? `cancel had no effect in ${ctx.escalateAfterS}s` } : r;
  });
}
