import { sanitizeRows } from '../io/sanitize.js';
import { renderArgs } from '../runbook/render.js';
import type { KubectlStep } from '../runbook/types.js';
import type { Row } from '../targets/types.js';
import type { ReadExecutor } from './types.js';

/** `kubectl logs --prefix` starts each line with `[pod/NAME/CONTAINER] `. */
const PREFIX = /^\[([^\]]+)\] ?(.*)$/;

/**
 * A read-only kubectl step: one row per output line, kept when it matches the step's `grep`
 * (case-insensitive, in TypeScript: no shell pipeline), the last `tail` of them. A line kubectl
 * prefixed with its source (`--prefix`) gets that source as its own column.
 */
export const kubectlExecutor: ReadExecutor<KubectlStep> = {
  role: 'read',
  async read(step, ctx) {
    const kubernetes = await ctx.targets.kubernetes();
    const { stdout } = await kubernetes.run(
      renderArgs(step.args, ctx.values, ctx.runbook.parameters),
    );
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
