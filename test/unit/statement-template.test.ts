import { describe, expect, it } from 'vitest';
import {
  isStatementTemplate,
  renderStatement,
  templateProblems,
} from '../../src/runbook/statement-template.js';

const specs = {
  timeout: { type: 'duration' as const, description: 'd' },
  name: { type: 'string' as const, description: 's' },
};
const sql =
  '-- {database} in a comment\nALTER DATABASE {database} SET statement_timeout = {timeout_ms};';

describe('statement templates (ALTER DATABASE takes no bound parameters)', () => {
  it('renders the quoted name and a duration in whole milliseconds, without comments', () => {
    expect(isStatementTemplate(sql)).toBe(true);
    expect(renderStatement(sql, '"we""ird"', { timeout: 1.5 }, specs)).toBe(
      'ALTER DATABASE "we""ird" SET statement_timeout = 1500',
    );
  });

  it('never writes text into SQL: a string parameter or a non-number is refused', () => {
    const text = 'ALTER DATABASE {database} SET application_name = {name}';
    expect(() => renderStatement(text, 'x', { name: "'; DROP TABLE t; --" }, specs)).toThrow(
      /expected a number from the name parameter/,
    );
    expect(() => renderStatement(sql, 'x', { timeout: 'abc' }, specs)).toThrow(/expected a number/);
  });

  it('the loader checks a template against params, and a bound statement is not one', () => {
    expect(templateProblems(sql, ['timeout'])).toEqual([]);
    expect(templateProblems(sql, [])).toEqual(['{timeout_ms} names timeout, not in params']);
    expect(templateProblems(sql, ['timeout', 'other'])).toEqual(['params lists other, unused']);
    expect(isStatementTemplate('SET GLOBAL max_connections = CAST(? AS UNSIGNED)')).toBe(false);
  });
});
