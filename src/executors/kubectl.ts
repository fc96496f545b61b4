import { sanitizeRows } from '../io/sanitize.js';
import { renderArgs } from '../runbook/render.js';
import type { KubectlStep } from '../runbook/types.js';
import {
  deploymentOf,
  deploymentRow,
  logMatchesOf,
  podsOf,
  replicaSetsOf,
  rolloutHistoryOf,
} from '../targets/kubernetes-objects.js';
import type { Row } from '../targets/types.js';
import { setAgainstTrend } from '../wizard/rollout.js';
import type { ReadContext, ReadExecutor } from './types.js';

/** `kubectl logs --prefix` starts each line with `[pod/NAME/CONTAINER] `. */
const PREFIX = /^\[([^\]]+)\] ?(.*)$/;

/**
 * A read-only kubectl step. Without `parse`: one row per output line, kept when it matches the
 * step's `grep` (case-insensitive, in TypeScript: no shell pipeline), the last `tail` of them; a
 * line kubectl prefixed with its source (`--prefix`) gets that source as its own column. With
 * `parse`, kubectl's output is read as what it is (src/targets/kubernetes-objects.ts): log lines
 * counted per pod, pods, the Deployment, its ReplicaSets (set against the trend step named by
 * `against`), or its rollout history.
 */
export const kubectlExecutor: ReadExecutor<KubectlStep> = {
  role: 'read',
  async read(step, ctx) {
    const kubernetes = await ctx.targets.kubernetes();
    const { stdout } = await kubernetes.run(
      renderArgs(step.args, ctx.values, ctx.runbook.parameters),
    );
    if (step.parse !== undefined) return sanitizeRows(parsed(step, stdout, ctx));
    const pattern = step.grep !== undefined ? new RegExp(step.grep, 'i') : undefined;
    let lines = stdout.split('\n').filter((line) => line.trim() !== '');
    if (pattern) lines = lines.filter((line) => pattern.test(line));
    if (step.tail !== undefined) lines = lines.slice(-step.tail);
    return sanitizeRows(
      lines.map((text): Row => {
        const prefixed = PREFIX.exec(text);
        return prefixed ? { source: prefixed[1], line: prefixed[2] } : { line: text };
      }),
    );
  },
};

function parsed(step: KubectlStep, stdout: string, ctx: ReadContext): Row[] {
  const now = Date.now();
  switch (step.parse) {
    case 'logs':
      return logMatchesOf(stdout, step.patterns ?? {}, step.tail);
    case 'pods':
      return podsOf(stdout, now);
    case 'deployment':
      return [deploymentRow(deploymentOf(stdout))];
    case 'replicasets': {
      const deployment = ctx.values.deployment;
      const rows = replicaSetsOf(
        stdout,
        typeof deployment === 'string' ? deployment : undefined,
        now,
      );
      if (step.against === undefined) return rows;
      const trend = ctx.earlier?.find((o) => o.id === step.against && o.status === 'ok');
      return setAgainstTrend(rows, trend?.rows);
    }
    case 'rollout-history':
      return rolloutHistoryOf(stdout);
    case undefined:
      return [];
  }
}
