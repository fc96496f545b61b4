import { sanitizeRows } from '../io/sanitize.js';
import { bindParameters } from '../runbook/params.js';
import type { QueryStep } from '../runbook/types.js';
import type { ReadExecutor } from './types.js';

/** A read-only SQL step: its parameters bound by the driver, never interpolated. */
export const queryExecutor: ReadExecutor<QueryStep> = {
  role: 'read',
  async read(step, ctx) {
    const target = await ctx.targets.database();
    return sanitizeRows(await target.query(step.sql, bindParameters(step.params, ctx.values)));
  },
};
