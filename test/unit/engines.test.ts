import { describe, expect, it } from 'vitest';
import { ENGINE_IDS, ENGINE_LIST, engineForUrl, type Engine } from '../../src/engines.js';
import { UsageError } from '../../src/errors.js';
import { placeholderCount } from '../../src/runbook/loader.js';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { parseRunbookDocument } from '../../src/runbook/schema.js';
import { resolveDatabaseTarget, type TargetFlags } from '../../src/targets/resolve.js';
import { runCli } from '../helpers/run-cli.js';

// src/engines.ts describes each engine once; everything that must know the engines follows it.
// These tests go over the registry rather than over a list of their own, so that an engine added
// there is held to the same rules without touching them.

const timeouts = { connectTimeoutMs: 1000, statementTimeoutMs: 1000 };
const flags = (extra: Partial<TargetFlags>): TargetFlags => ({ ...timeouts, ...extra });

/** A runbook document valid in every way but the one under test. */
function runbookFor(engine: string) {
  const step = (id: string) => ({ id, title: 'Look', why: 'to see', kind: 'query', sql: 'x.sql' });
  return { id: `${engine}/x`, title: 'X', engine, diagnose: [step('a')], verify: [step('b')] };
}

describe('the engine registry', () => {
  it('names each engine, flag and URL scheme once', () => {
    const ids = ENGINE_LIST.map((e) => e.id);
    const flagNames = ENGINE_LIST.map((e) => e.flag);
    const schemes = ENGINE_LIST.flatMap((e) => e.schemes);
    expect(ids).toEqual(ENGINE_IDS);
    expect(new Set(flagNames).size).toBe(flagNames.length);
    expect(new Set(schemes).size).toBe(schemes.length);
    for (const scheme of schemes) expect(scheme).toMatch(/^[a-z][a-z0-9+.-]*:$/);
  });

  it('is what the runbook schema accepts as `engine:`, and nothing else', () => {
    for (const id of ENGINE_IDS) {
      expect(parseRunbookDocument(runbookFor(id)).issues).toEqual([]);
    }
    const { issues } = parseRunbookDocument(runbookFor('oracle'));
    expect(issues.map((i) => i.message)).toEqual([
      `expected one of ${ENGINE_IDS.join(', ')} (got "oracle")`,
    ]);
  });

  it.each(ENGINE_IDS)('%s: its default runbook is bundled, for that engine', (id: Engine) => {
    const runbook = defaultRunbookFor(id);
    expect(runbook.id).toBe(ENGINE_LIST.find((e) => e.id === id)!.defaultRunbook);
    expect(runbook.engine).toBe(id);
  });

  it.each(ENGINE_LIST.map((e) => [e.id, e] as const))(
    '%s: its flag, each of its schemes and its client variables select it',
    async (id, engine) => {
      for (const scheme of engine.schemes) {
        const url = `${scheme}//someone@db.example:1234/somedb`;
        expect(engineForUrl(url)).toBe(engine);
        const byFlag = await resolveDatabaseTarget(flags({ [engine.flag]: url }), {});
        expect(byFlag).toMatchObject({ engine: id, from: `--${engine.flag}`, port: 1234 });
        const byEnv = await resolveDatabaseTarget(flags({}), { DATABASE_URL: url });
        expect(byEnv).toMatchObject({ engine: id, from: 'DATABASE_URL', host: 'db.example' });
      }
      for (const name of engine.env) {
        const value = name.endsWith('PORT') && !name.includes('UNIX') ? '4321' : 'db.example';
        const spec = await resolveDatabaseTarget(flags({}), { [name]: value });
        expect(spec.engine, name).toBe(id);
      }
    },
  );

  it("an engine's flag refuses another engine's URL, naming its own schemes", async () => {
    for (const engine of ENGINE_LIST) {
      const other = ENGINE_LIST.find((e) => e !== engine)!;
      const url = `${other.schemes[0]}//someone@db.example/somedb`;
      const attempt = resolveDatabaseTarget(flags({ [engine.flag]: url }), {});
      await expect(attempt).rejects.toThrow(UsageError);
      await expect(attempt).rejects.toThrow(
        `--${engine.flag}: expected a ${engine.schemes.map((s) => `${s}//`).join(' or ')} URL`,
      );
    }
  });

  it('two engine flags at once are a usage error naming both', async () => {
    const both = Object.fromEntries(
      ENGINE_LIST.map((e) => [e.flag, `${e.schemes[0]}//someone@db.example/somedb`]),
    );
    await expect(resolveDatabaseTarget(flags(both), {})).rejects.toThrow(
      `${ENGINE_LIST.map((e) => `--${e.flag}`).join(' and ')}: give one database target`,
    );
  });

  it("the SQL placeholder check follows the engine's style", () => {
    const sql = "SELECT $2, ? FROM t WHERE a = '$3?' -- $4 ?";
    const counts = Object.fromEntries(ENGINE_IDS.map((id) => [id, placeholderCount(id, sql)]));
    expect(counts).toEqual(
      Object.fromEntries(
        ENGINE_LIST.map((e) => [e.id, e.placeholders === 'numbered' ? 2 : 1] as const),
      ),
    );
  });

  it('`poolctl diagnose --help` offers one target flag per engine', async () => {
    const { code, stdout } = await runCli(['diagnose', '--help']);
    expect(code).toBe(0);
    for (const engine of ENGINE_LIST) {
      expect(stdout).toMatch(new RegExp(`--${engine.flag} <url> +${engine.products[0]}`));
    }
  });
});
