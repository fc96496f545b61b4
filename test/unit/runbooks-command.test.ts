import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  parseRunbooksOptions,
  runRunbooks,
  type RunbooksOptions,
} from '../../src/commands/runbooks.js';
import { UsageError } from '../../src/errors.js';

function fixture(name: string): string {
  return path.relative(
    process.cwd(),
    fileURLToPath(new URL(`../fixtures/runbooks/${name}`, import.meta.url)),
  );
}

async function run(opts: RunbooksOptions) {
  let out = '';
  let err = '';
  const code = await runRunbooks(opts, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe('parseRunbooksOptions', () => {
  it.each([
    [{}, ['list'], { sub: 'list', paths: [], output: 'human' }],
    [
      { output: 'json' },
      ['show', 'postgres/pool-exhausted'],
      { sub: 'show', id: 'postgres/pool-exhausted', paths: [], output: 'json' },
    ],
    [{}, ['validate'], { sub: 'validate', paths: [], output: 'human' }],
    [
      {},
      ['validate', 'a.yaml', 'b/'],
      { sub: 'validate', paths: ['a.yaml', 'b/'], output: 'human' },
    ],
  ])('%j %j', (flags, args, expected) => {
    expect(parseRunbooksOptions(flags, args)).toEqual(expected);
  });

  it.each([
    [
      { action: 'list', output: 'json' },
      { sub: 'list', paths: [], output: 'json' },
    ],
    [
      { action: 'show', id: 'x/y' },
      { sub: 'show', id: 'x/y', paths: [], output: 'human' },
    ],
    [
      { action: 'validate', paths: ['a.yaml'] },
      { sub: 'validate', paths: ['a.yaml'], output: 'human' },
    ],
  ])('commander subcommand flags %j', (flags, expected) => {
    expect(parseRunbooksOptions(flags)).toEqual(expected);
  });

  it.each([
    [{}, [], 'runbooks: expected list, show ID or validate [PATH...]'],
    [{}, ['lsit'], 'runbooks lsit: expected list, show ID or validate [PATH...]'],
    [{}, ['show'], 'runbooks show: expected one runbook id or file, e.g. postgres/pool-exhausted'],
    [{}, ['list', 'x'], 'runbooks list: unexpected argument "x"'],
    [{ output: 'yaml' }, ['list'], '--output yaml: expected human or json'],
  ])('%j %j fails', (flags, args, message) => {
    expect(() => parseRunbooksOptions(flags, args)).toThrow(new UsageError(message));
  });
});

describe('runbooks validate', () => {
  const valid = fixture('postgres/pool-exhausted.yaml');
  const broken = fixture('broken/bad-severity.yaml');

  it('prints ok for a valid file and exits 0', async () => {
    expect(await run({ sub: 'validate', paths: [valid], output: 'human' })).toEqual({
      code: 0,
      out: `ok ${valid}\n`,
      err: '',
    });
  });

  it('prints the error lines, counts on stderr and exits 2', async () => {
    expect(await run({ sub: 'validate', paths: [valid, broken], output: 'human' })).toEqual({
      code: 2,
      out:
        `ok ${valid}\n` +
        `${broken}:14: diagnose[0].findings[0].severity: expected one of info, warning, critical (got "crit")\n`,
      err: '1 of 2 runbooks invalid\n',
    });
  });

  it('validates every runbook in a directory', async () => {
    const { code, out } = await run({
      sub: 'validate',
      paths: [fixture('postgres')],
      output: 'human',
    });
    expect({ code, out }).toEqual({
      code: 0,
      out: `ok ${path.join(fixture('postgres'), 'pool-exhausted.yaml')}\n`,
    });
  });

  it('writes one JSON document with --output json', async () => {
    const { code, out } = await run({ sub: 'validate', paths: [valid, broken], output: 'json' });
    expect(code).toBe(2);
    expect(JSON.parse(out)).toEqual({
      ok: false,
      files: [
        { file: valid, ok: true, id: 'postgres/pool-exhausted', errors: [] },
        {
          file: broken,
          ok: false,
          errors: [
            `${broken}:14: diagnose[0].findings[0].severity: expected one of info, warning, critical (got "crit")`,
          ],
        },
      ],
    });
  });
});

describe('runbooks show', () => {
  it('shows a runbook file: parameters with defaults, then each phase with its steps', async () => {
    const { code, out } = await run({
      sub: 'show',
      id: fixture('postgres/pool-exhausted.yaml'),
      paths: [],
      output: 'human',
    });
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'postgres/pool-exhausted: Fixture pool exhausted',
      `engine: postgres   origin: ${path.resolve(fixture('postgres/pool-exhausted.yaml'))}`,
      'sources: runbook-006.md',
    ]);
    expect(out).toContain(
      [
        'Parameters (change one with --set name=value)',
        '  idle_after            duration  5m   sessions idle longer than this are suspects',
        '  utilization_critical  percent   95%  utilization that is critical',
        "  replicas              integer   3    the application's instance count",
        "  deployment            string    -    the application's Deployment",
      ].join('\n'),
    );
    expect(out).toContain(
      [
        '  2. idle [query] Idle sessions',
        '     why: Idle connections past the threshold are leak suspects.',
        '     sql: idle.sql (params: idle_after)',
        '       -- Idle sessions older than $1 seconds',
      ].join('\n'),
    );
    expect(out).toContain(
      '       critical pool-critical (when utilization_percent >= {utilization_critical}): Connections at {value}% of usable slots -> kill-idle',
    );
    expect(out).toContain(
      '       warning idle-suspects (when any row, count >= 3): {count} sessions idle longer than {idle_after} -> kill-idle, restart-app',
    );
    expect(out).toContain(
      '     command: kubectl logs -l app={deployment} --tail 500   (lines matching connection|leak)',
    );
    expect(out).toContain(
      'Prevent\n  1. idle-timeout [manual] Set idle_in_transaction_session_timeout',
    );
  });

  it('an invalid file is a UsageError', async () => {
    await expect(
      run({ sub: 'show', id: fixture('broken/bad-kind.yaml'), paths: [], output: 'human' }),
    ).rejects.toThrow(UsageError);
  });
});
