import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import {
  checkRunbookFile,
  loadRunbookFile,
  placeholderCount,
  validateRunbookFiles,
} from '../../src/runbook/loader.js';
import { parseRunbookDocument } from '../../src/runbook/schema.js';

/** Fixture paths as a user would type them, relative to the repository. */
function fixture(name: string): string {
  return path.relative(
    process.cwd(),
    fileURLToPath(new URL(`../fixtures/runbooks/${name}`, import.meta.url)),
  );
}

const VALID = fixture('postgres/pool-exhausted.yaml');
const B = fixture('broken');

describe('the valid fixture', () => {
  it('loads into the Runbook type, SQL read from the files next to it', async () => {
    const rb = await loadRunbookFile(VALID);
    expect(rb.id).toBe('postgres/pool-exhausted');
    expect(rb.origin).toBe(path.resolve(VALID));
    expect(rb.parameters.utilization_critical).toEqual({
      type: 'percent',
      default: '95',
      description: 'utilization that is critical',
    });
    expect(rb.diagnose.map((s) => [s.id, s.kind])).toEqual([
      ['utilization', 'query'],
      ['idle', 'query'],
      ['app-connections', 'promql'],
      ['app-logs', 'kubectl'],
    ]);
    const [util, idle, , logs] = rb.diagnose;
    expect(util).toMatchObject({ sqlFile: 'utilization.sql', params: [], metrics: true });
    if (util?.kind !== 'query' || idle?.kind !== 'query' || logs?.kind !== 'kubectl')
      throw new Error('kinds');
    expect(util.sql).toMatch(/^-- How full the server is\.\nSELECT count\(\*\)/);
    expect(util.findings[0]).toEqual({
      id: 'pool-critical',
      severity: 'critical',
      when: { column: 'utilization_percent', op: '>=', param: 'utilization_critical' },
      message: 'Connections at {value}% of usable slots',
      suggest: ['kill-idle'],
    });
    expect(util.findings[1]?.when).toHaveLength(2);
    expect(util.findings[1]?.suggest).toEqual([]);
    expect(idle).toMatchObject({
      params: ['idle_after'],
      columns: ['pid', 'user', 'idle_s'],
      maxRows: 5,
    });
    // YAML reads 500 as a number; an argument array holds strings.
    expect(logs.args).toEqual(['logs', '-l', 'app={deployment}', '--tail', '500']);
    expect(rb.actions.map((s) => s.kind)).toEqual(['terminate', 'change']);
    expect(rb.verify[0]).toMatchObject({ kind: 'query', sqlFile: 'utilization.sql', findings: [] });
    expect(rb.prevent[0]).toMatchObject({
      kind: 'manual',
      source: 'exhaustion-response.md Prevention',
    });
  });

  it('passes the bundled-source check: its id matches its place', async () => {
    const [result] = await validateRunbookFiles([VALID], { bundled: true });
    expect(result).toMatchObject({ file: VALID, ok: true, errors: [] });
  });
});

describe('each kind of mistake is one line naming the file, line, field and what was expected', () => {
  it.each([
    ['unknown-key', `12: diagnose[0].max_rows: unknown key (did you mean "maxRows"?)`],
    [
      'bad-severity',
      `14: diagnose[0].findings[0].severity: expected one of info, warning, critical (got "crit")`,
    ],
    [
      'bad-kind',
      `10: diagnose[0].kind: expected one of query, promql, kubectl, terminate, change, manual (got "qurey")`,
    ],
    ['missing-why', `7: diagnose[0].why: required: expected a string`],
    [
      'duplicate-step-id',
      `18: actions[0].id: duplicate step id "kill-idle" (first used at diagnose[0].id)`,
    ],
    [
      'unknown-suggest',
      `16: diagnose[0].findings[0].suggest[0]: "kill-idel" is not a step in actions (actions: kill-idle)`,
    ],
    [
      'undeclared-param',
      `25: actions[0].params[0]: unknown parameter "idle_afterr" (declared: idle_after)`,
    ],
    ['when-both', `15: diagnose[0].findings[0].when: expected exactly one of value or param`],
    [
      'bad-default',
      `5: parameters.idle_after.default: expected a duration like 30s, 5m or 1h (got "5x")`,
    ],
    [
      'id-engine',
      `1: id: expected to start with "postgres/" to match engine: postgres (got "mysql/broken")`,
    ],
    [
      'missing-sql',
      `11: diagnose[0].sql: cannot read ${path.join(B, 'missing.sql')}: no such file`,
    ],
    ['placeholders', `18: actions[0].params: kill.sql uses $1, but params lists none`],
    ['change-read-params', `18: actions[0].read: kill.sql uses $1, but readArgs lists none`],
    [
      'empty-verify',
      `11: verify: expected at least one step: an empty verify would call any server recovered`,
    ],
    // .txt: prettier (npm run lint) would refuse to parse it as YAML.
    [
      'invalid-yaml.yaml.txt',
      `8: invalid YAML: Nested mappings are not allowed in compact mappings`,
    ],
  ])('%s', async (name, expected) => {
    const file = path.join(B, name.includes('.') ? name : `${name}.yaml`);
    const result = await checkRunbookFile(file);
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual([`${file}:${expected}`]);
    await expect(loadRunbookFile(file)).rejects.toThrow(new UsageError(`${file}:${expected}`));
  });

  it('a file that does not exist', async () => {
    const file = path.join(B, 'nope.yaml');
    await expect(loadRunbookFile(file)).rejects.toThrow(
      new UsageError(`${file}: cannot read the runbook: no such file`),
    );
  });

  it('a bundled source whose id does not match its place', async () => {
    const file = path.join(B, 'missing-sql.yaml');
    const [result] = await validateRunbookFiles([file], { bundled: true });
    expect(result?.errors).toEqual([
      `${file}:1: id: expected "broken/missing-sql", the file's place under runbooks/ (got "postgres/broken")`,
      `${file}:11: diagnose[0].sql: cannot read ${path.join(B, 'missing.sql')}: no such file`,
    ]);
  });
});

describe('parseRunbookDocument on documents the fixtures do not cover', () => {
  const base = { id: 's', title: 'S', why: 'W' };
  const step = { ...base, kind: 'manual', commands: [['true']] };
  const doc = (over: Record<string, unknown>) => ({
    id: 'postgres/x',
    title: 'T',
    engine: 'postgres',
    diagnose: [step],
    verify: [{ ...step, id: 'after' }],
    ...over,
  });
  const messages = (data: unknown) =>
    parseRunbookDocument(data).issues.map((i) => `${i.path.join('/')}: ${i.message}`);

  it.each([
    [null, [': expected a mapping (got nothing)']],
    [doc({ engine: 'oracle' }), ['engine: expected one of postgres, mysql (got "oracle")']],
    [doc({ titel: 'x' }), ['titel: unknown key (did you mean "title"?)']],
    [doc({ includes: ['x.yaml'] }), ['includes: unknown key (did you mean "include"?)']],
    [doc({ verify: undefined }), ['verify: required: expected a list']],
    [
      doc({ verify: [] }),
      ['verify: expected at least one step: an empty verify would call any server recovered'],
    ],
    [
      doc({ zzz: 1 }),
      [
        'zzz: unknown key (expected one of id, title, engine, sources, parameters, diagnose, actions, verify, prevent, escalation, include)',
      ],
    ],
    [
      doc({ id: 'pool' }),
      ['id: expected <engine>/<name> like postgres/pool-exhausted (got "pool")'],
    ],
    [
      doc({
        diagnose: [{ ...base, kind: 'kubectl', args: ['logs'], parse: 'logs' }],
      }),
      ['diagnose/0/patterns: required with parse: logs (a name per regular expression)'],
    ],
    [
      doc({
        diagnose: [
          {
            ...base,
            kind: 'kubectl',
            args: ['get', 'pods'],
            patterns: { x: 'x' },
            grep: 'y',
            parse: 'pods',
          },
        ],
      }),
      [
        'diagnose/0/patterns: patterns go with parse: logs',
        'diagnose/0/grep: grep filters plain lines: with parse: pods it would be ignored',
      ],
    ],
    [
      doc({
        diagnose: [
          { ...base, id: 'trend', kind: 'promql', query: 'up' },
          { ...base, kind: 'kubectl', args: ['get', 'rs'], parse: 'replicasets', against: 'trend' },
        ],
      }),
      [
        'diagnose/1/against: expected the id of an earlier trend step in this phase (a promql step with trend: true) (got "trend")',
      ],
    ],
    [
      doc({ diagnose: [{ ...base, kind: 'kubectl', args: ['get'], parse: 'yaml' }] }),
      [
        'diagnose/0/parse: expected one of logs, pods, deployment, replicasets, rollout-history (got "yaml")',
      ],
    ],
    [doc({ diagnose: [] }), ['diagnose: expected at least one step']],
    [doc({ diagnose: 'x' }), ['diagnose: expected a list (got "x")']],
    [
      doc({ diagnose: [{ ...step, why: 'two\nlines' }] }),
      ['diagnose/0/why: expected a single line of text (got "two\\nlines")'],
    ],
    [
      doc({ diagnose: [{ ...step, id: 'Kill Idle' }] }),
      [
        'diagnose/0/id: expected a lowercase id like kill-idle (letters, digits, - and _) (got "Kill Idle")',
      ],
    ],
    [
      doc({ parameters: { 'Bad-Name': { type: 'integer', description: 'd' } } }),
      [
        'parameters/Bad-Name: invalid name: expected a parameter name like kill_idle_after (lowercase letters, digits and _)',
      ],
    ],
    [
      doc({ parameters: { n: { type: 'number', description: 'd' } } }),
      ['parameters/n/type: expected one of duration, percent, integer, string (got "number")'],
    ],
    [
      doc({ parameters: { n: { type: 'integer', description: 'd', default: [1] } } }),
      ['parameters/n/default: expected a string or a number (got a list)'],
    ],
    [
      doc({
        diagnose: [
          {
            ...step,
            findings: [
              {
                id: 'f',
                severity: 'info',
                message: 'm',
                when: [{ column: 'c', op: '=>', value: 1 }],
              },
            ],
          },
        ],
      }),
      ['diagnose/0/findings/0/when/0/op: expected one of >, >=, <, <=, ==, != (got "=>")'],
    ],
    [
      doc({
        diagnose: [
          {
            ...step,
            findings: [
              {
                id: 'f',
                severity: 'info',
                message: 'm',
                when: { column: 'c', op: '>', value: 1, extra: 2 },
              },
            ],
          },
        ],
      }),
      ['diagnose/0/findings/0/when/extra: unknown key (expected one of column, op, value, param)'],
    ],
    [
      doc({
        diagnose: [
          {
            ...step,
            findings: [
              {
                id: 'f',
                severity: 'info',
                message: 'm',
                when: [{ column: 'c', op: '>', param: 'p' }],
              },
            ],
          },
        ],
      }),
      ['diagnose/0/findings/0/when/0/param: unknown parameter "p" (declared: none)'],
    ],
    [
      doc({ diagnose: [{ ...base, kind: 'promql', query: 'up', range: 'an hour' }] }),
      ['diagnose/0/range: expected a duration like 30s, 5m or 1h (got "an hour")'],
    ],
    [
      doc({
        parameters: { window: { type: 'string', description: 'd' } },
        diagnose: [{ ...base, kind: 'promql', query: 'up', range: '{window}' }],
      }),
      ['diagnose/0/range: {window} is not a declared duration parameter (declared: window)'],
    ],
    [
      doc({ diagnose: [{ ...base, kind: 'promql', query: 'up', trend: true }] }),
      [
        'diagnose/0/trend: a trend needs a range query: add range (a duration like 1h, or a {parameter})',
      ],
    ],
    [
      doc({
        parameters: { window: { type: 'duration', default: '1h', description: 'd' } },
        diagnose: [{ ...base, kind: 'promql', query: 'up', range: '{window}', trend: true }],
      }),
      [],
    ],
    [
      doc({ diagnose: [{ ...base, kind: 'query', sql: 'x.txt' }] }),
      [
        'diagnose/0/sql: expected the name of a .sql file next to the runbook, like utilization.sql (got "x.txt")',
      ],
    ],
    [
      doc({ diagnose: [{ ...base, kind: 'terminate', sql: 'k.sql', summary: 's' }] }),
      ['diagnose/0/mode: required: expected one of cancel, terminate'],
    ],
    [
      doc({
        diagnose: [
          step,
          {
            ...step,
            id: 't',
            findings: [{ id: 'f', severity: 'info', message: 'm', suggest: ['s'] }],
          },
        ],
      }),
      ['diagnose/1/findings/0/suggest/0: "s" is not a step in actions (actions: none)'],
    ],
  ])('%#: %j', (data, expected) => {
    expect(messages(data)).toEqual(expected);
  });

  it('accepts a minimal runbook and fills the defaults', () => {
    expect(parseRunbookDocument(doc({}))).toEqual({
      issues: [],
      runbook: {
        id: 'postgres/x',
        title: 'T',
        engine: 'postgres',
        sources: [],
        parameters: {},
        diagnose: [{ ...step, findings: [] }],
        actions: [],
        verify: [{ ...step, id: 'after', findings: [] }],
        prevent: [],
      },
    });
  });
});

describe('placeholderCount', () => {
  it.each([
    ['postgres', 'SELECT $1, $2 -- $3\n/* $4 */ , \'$5\', "$6", $$ $7 $$, $q$ $8 $q$', 2],
    ['postgres', 'SELECT 1', 0],
    ['postgres', 'SELECT $2', 2],
    ['mysql', 'SELECT ? , \'?\', "?", `?` -- ?\n# ?\n/* ? */ , ?', 2],
  ] as const)('%s: %j has %d', (engine, sql, n) => {
    expect(placeholderCount(engine, sql)).toBe(n);
  });
});

describe('the step shapes for every system: each mistake names its path and what was expected', () => {
  const base = { id: 's', title: 'S', why: 'W' };
  const act = { ...base, id: 'a1' };
  const manual = { ...base, kind: 'manual', commands: [['true']] };
  const doc = (over: Record<string, unknown>) => ({
    id: 'postgres/x',
    title: 'T',
    engine: 'postgres',
    diagnose: [manual],
    verify: [{ ...manual, id: 'after' }],
    ...over,
  });
  const d = (step: unknown) => doc({ diagnose: [step] });
  const a = (step: unknown) => doc({ actions: [step] });
  const kube = { ...act, kind: 'change', target: 'kubernetes', summary: 's' };
  const db = { ...act, kind: 'change', target: 'database', summary: 's' };
  const messages = (data: unknown) =>
    parseRunbookDocument(data).issues.map((i) => `${i.path.join('/')}: ${i.message}`);

  it('accepts every new shape, and the loader fills a database change from its files', () => {
    const rb = doc({
      parameters: {
        deployment: { type: 'string', default: 'api', description: 'd' },
        n: { type: 'integer', default: '200', description: 'n' },
      },
      diagnose: [
        { ...base, kind: 'promql', query: 'up{job="x"}', range: '1h', columns: ['pod'] },
        { ...base, id: 'k', kind: 'kubectl', args: ['logs', '{deployment}'], grep: 'a|b', tail: 5 },
        { ...manual, id: 'm', commands: [['git', 'log']], note: 'in the repository', summary: 's' },
      ],
      actions: [
        { ...kube, commands: [['rollout', 'restart', 'deployment/{deployment}']], wait: ['x'] },
        {
          ...db,
          id: 'a2',
          sql: 'set.sql',
          params: ['n'],
          read: 'read.sql',
          readArgs: ['max_connections'],
        },
      ],
    });
    const { runbook, issues } = parseRunbookDocument(rb);
    expect(issues).toEqual([]);
    expect(runbook?.actions[1]).toEqual({
      ...db,
      id: 'a2',
      findings: [],
      sqlFile: 'set.sql',
      sql: '',
      params: ['n'],
      readFile: 'read.sql',
      readArgs: ['max_connections'],
      readSql: '',
    });
  });

  it.each([
    [
      d({ ...base, kind: 'promql' }),
      ['diagnose/0/query: required: expected either query or queries (one of them)'],
    ],
    [
      d({ ...base, kind: 'promql', query: 'up', queries: { a: 'up' } }),
      ['diagnose/0/query: expected either query or queries (one of them) (got "up")'],
    ],
    [
      d({ ...base, kind: 'promql', queries: { a: 'up' }, range: '1h' }),
      ['diagnose/0/range: queries are instant: a range goes with query (got "1h")'],
    ],
    [
      d({ ...base, kind: 'promql', query: 'up', columns: [] }),
      ['diagnose/0/columns: expected at least one column'],
    ],
    [
      d({ ...base, kind: 'kubectl', args: [] }),
      ['diagnose/0/args: expected at least one argument'],
    ],
    [
      d({ ...base, kind: 'kubectl', args: ['logs'], grep: 'conn(' }),
      [
        'diagnose/0/grep: expected a JavaScript regular expression like connection|leak (got "conn(")',
      ],
    ],
    [
      d({ ...base, kind: 'kubectl', args: ['logs'], tail: 0 }),
      ['diagnose/0/tail: expected a whole number of at least 1 (got 0)'],
    ],
    [
      a({ ...act, kind: 'change', summary: 's', commands: [['x']] }),
      ['actions/0/target: required: expected one of database, kubernetes'],
    ],
    [
      a({ ...kube, target: 'cluster' }),
      ['actions/0/target: expected one of database, kubernetes (got "cluster")'],
    ],
    [
      a(kube),
      [
        'actions/0/commands: required: expected a list',
        'actions/0/wait: required: expected a list',
      ],
    ],
    // A change poolctl cannot see take effect is not reported as done: the wait is required.
    [a({ ...kube, commands: [['x']] }), ['actions/0/wait: required: expected a list']],
    [
      a({ ...kube, commands: [['x']], wait: ['x'], expect: '(' }),
      ['actions/0/expect: expected a regular expression (got "(")'],
    ],
    [
      a({ ...kube, commands: [['x']], wait: ['x'], preview: 'x' }),
      [
        'actions/0/preview: unknown key (expected one of id, title, why, findings, hints, source, kind, target, summary, commands, wait, expect)',
      ],
    ],
    [
      a({ ...kube, commands: [['x']], wait: [] }),
      ['actions/0/wait: expected at least one argument'],
    ],
    [a({ ...db, sql: 'a.sql' }), ['actions/0/read: required: expected a string']],
    [
      a({ ...db, sql: 'a.sql', read: 'b.sql', commands: [['x']] }),
      [
        'actions/0/commands: unknown key (expected one of id, title, why, findings, hints, source, kind, target, summary, sql, params, read, readArgs)',
      ],
    ],
    [
      d({ ...base, kind: 'manual', command: 'x' }),
      [
        'diagnose/0/commands: required: expected a list',
        'diagnose/0/command: unknown key (did you mean "commands"?)',
      ],
    ],
    [
      d({ ...base, kind: 'manual', commands: [[]] }),
      ['diagnose/0/commands/0: expected at least one argument'],
    ],
    [
      d({ ...base, kind: 'manual', commands: [] }),
      ['diagnose/0/commands: expected at least one command'],
    ],
    [
      d({ ...manual, note: 'a\nb' }),
      ['diagnose/0/note: expected a single line of text (got "a\\nb")'],
    ],
  ])('shape %#: %j', (data, expected) => {
    expect(messages(data)).toEqual(expected);
  });

  it.each([
    [
      d({ ...base, kind: 'terminate', mode: 'cancel', sql: 'k.sql', summary: 's' }),
      [
        'diagnose/0/kind: expected one of query, promql, kubectl, manual: diagnose only reads (got "terminate")',
      ],
    ],
    [
      doc({ verify: [{ ...kube, commands: [['x']], wait: ['x'] }] }),
      [
        'verify/0/kind: expected one of query, promql, kubectl, manual: verify only reads (got "change")',
      ],
    ],
    [
      a({ ...act, kind: 'promql', query: 'up' }),
      [
        'actions/0/kind: expected one of terminate, change, manual: an action changes something or is done by hand (got "promql")',
      ],
    ],
    [
      doc({ prevent: [{ ...act, kind: 'terminate', mode: 'cancel', sql: 'k.sql', summary: 's' }] }),
      [
        'prevent/0/kind: expected one of query, promql, kubectl, change, manual: prevent never kills sessions (got "terminate")',
      ],
    ],
  ])('phase rule %#: %j', (data, expected) => {
    expect(messages(data)).toEqual(expected);
  });

  it.each([
    [
      d({ ...base, kind: 'kubectl', args: ['rollout', 'history', 'deployment/{deploymnt}'] }),
      [
        'diagnose/0/args/2: step "s" uses {deploymnt}, which is not a declared parameter (declared: none)',
      ],
    ],
    [
      d({ ...base, kind: 'promql', query: 'up{job="x"} * {factor}' }),
      [
        'diagnose/0/query: step "s" uses {factor}, which is not a declared parameter (declared: none)',
      ],
    ],
    [
      a({ ...kube, commands: [['scale', '--replicas={n}']], wait: ['rollout', 'status', '{dep}'] }),
      [
        'actions/0/commands/0/1: step "a1" uses {n}, which is not a declared parameter (declared: none)',
        'actions/0/wait/2: step "a1" uses {dep}, which is not a declared parameter (declared: none)',
      ],
    ],
    [
      d({
        ...manual,
        commands: [
          ['git', 'log'],
          ['psql', '-c', '{sql}'],
        ],
      }),
      [
        'diagnose/0/commands/1/2: step "s" uses {sql}, which is not a declared parameter (declared: none)',
      ],
    ],
    [
      a({ ...db, sql: 'a.sql', read: 'b.sql', params: ['nmc'] }),
      ['actions/0/params/0: unknown parameter "nmc" (declared: none)'],
    ],
  ])('placeholder %#: %j', (data, expected) => {
    expect(messages(data)).toEqual(expected);
  });
});
