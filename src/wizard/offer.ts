import type { Prompter } from '../io/prompter.js';
import type { Runbook } from '../runbook/types.js';
import { runAction, type ActionRecord, type MitigationContext } from './mitigation.js';
import type { PhaseResult, ThresholdSuggestion } from './model.js';
import { rankActions } from './rank.js';

export interface OfferContext {
  runbook: Runbook;
  /** Records its own questions and answers (recordingPrompter). */
  prompter: Prompter;
  mitigation: MitigationContext;
  /** Action ids that fit the findings, best first. */
  suggested: string[];
  /**
   * The lower thresholds the diagnosis' hints found (the defaults match nothing): each offered as
   * its own choice beside its action, never in place of it nor as the default answer.
   */
  thresholds?: ThresholdSuggestion[];
  /** Runs the verify phase and reports it. */
  verify: () => Promise<PhaseResult>;
  note: (text: string) => void;
}

export interface OfferResult {
  records: ActionRecord[];
  verified?: PhaseResult;
}

/**
 * The decisions after a diagnosis, each with the likely answer as its default: the fitting
 * mitigation (Enter), the confirm (y Enter), verify now (Enter), done (Enter).
 */
export async function offerMitigations(ctx: OfferContext): Promise<OfferResult> {
  const records: ActionRecord[] = [];
  let verified: PhaseResult | undefined;
  const lower = (id: string) => ctx.thresholds?.find((t) => t.action === id);
  const choicesFor = (ids: string[]) => [
    ...actionChoices(ctx.runbook, ids).flatMap((choice) => {
      const t = lower(choice.value);
      if (!t) return [choice];
      return [
        choice,
        {
          value: `${choice.value} --set ${t.set}`,
          name: `${choice.name} with ${t.set}`,
          description: `The lower threshold a hint found: selects ${t.matches}, more than the runbook's default. Shown before anything is done.`,
        },
      ];
    }),
    { value: 'none', name: 'None: stop here', description: 'Change nothing.' },
  ];
  if (ctx.suggested.length === 0) return { records };
  let choices = choicesFor(ctx.suggested);

  for (;;) {
    const id = await ctx.prompter.select('Which mitigation?', choices, choices[0]!.value);
    if (id === 'none') break;
    const [actionId, threshold] = id.split(' --set ');
    const t = threshold === undefined ? undefined : lower(actionId!);
    const action = ctx.runbook.actions.find((a) => a.id === actionId)!;
    // The chosen lower threshold goes into this action only; its preview and its confirm
    // (default No) show exactly the sessions it selects.
    const record = await runAction(
      action,
      t
        ? { ...ctx.mitigation, values: { ...ctx.mitigation.values, [t.param]: t.value } }
        : ctx.mitigation,
    );
    records.push(record);
    if (record.executed) {
      const verifyNow = await ctx.prompter.confirm('Verify the recovery now?', true);
      if (verifyNow) verified = await ctx.verify();
    }
    const next = await ctx.prompter.select<'done' | 'another' | 'note'>(
      'Next?',
      [
        { value: 'done', name: 'Done' },
        { value: 'another', name: 'Another mitigation' },
        { value: 'note', name: 'Add a note for the postmortem, then done' },
      ],
      'done',
    );
    if (next === 'note') {
      const text = await ctx.prompter.input('Note:');
      if (text.trim()) ctx.note(text);
    }
    if (next !== 'another') break;
    // What verify still finds comes first, then the rest of the first list, what ran last.
    const done = records.map((r) => r.id);
    const ranked = [
      ...(verified ? rankActions(ctx.runbook, verified.findings) : []),
      ...ctx.suggested.filter((id) => !done.includes(id)),
      ...ctx.suggested.filter((id) => done.includes(id)),
    ];
    choices = choicesFor([...new Set(ranked)]);
  }
  return { records, verified };
}

/**
 * The prevention fixes an audit found missing (the seeds' timeouts), offered one at a time, most
 * severe first: each through runAction, so with its preview (the statement, current → new) and
 * its own approval (as any action: `--yes` given to the wizard approves it too).
 */
export async function offerPreventFixes(ctx: {
  runbook: Runbook;
  prompter: Prompter;
  mitigation: MitigationContext;
  fixes: string[];
}): Promise<ActionRecord[]> {
  const records: ActionRecord[] = [];
  // A fix this account may not make (ALTER DATABASE by a role that does not own the database) is
  // not offered: said once, with who can, instead of an approval that can only fail.
  const { changeRefusal } = await import('../executors/change.js');
  let left: string[] = [];
  for (const id of ctx.fixes) {
    const action = ctx.runbook.actions.find((a) => a.id === id);
    if (!action) continue;
    const refused = await changeRefusal(action, ctx.mitigation);
    if (refused === undefined) left.push(id);
    else
      ctx.mitigation.reporter.notice(
        `${action.title} [${id}] not offered: ${refused} (poolctl prevent --apply ${id}, as one of them)`,
      );
  }
  while (left.length > 0) {
    const id = await ctx.prompter.select(
      'Apply a prevention fix?',
      [
        ...actionChoices(ctx.runbook, left),
        { value: 'none', name: 'None: leave the setup as it is', description: 'Change nothing.' },
      ],
      left[0],
    );
    if (id === 'none') break;
    const action = ctx.runbook.actions.find((a) => a.id === id)!;
    records.push(await runAction(action, ctx.mitigation));
    left = left.filter((other) => other !== id);
  }
  return records;
}

/** The runbook's actions as choices: title, id and the one-line summary beneath. */
function actionChoices(runbook: Runbook, ids: string[]) {
  return ids.flatMap((id) => {
    const action = runbook.actions.find((a) => a.id === id);
    if (!action) return [];
    const summary = ('summary' in action && action.summary) || action.why;
    return [{ value: id, name: `${action.title} [${id}]`, description: summary }];
  });
}
