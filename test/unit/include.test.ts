import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runRunbooks } from '../../src/commands/runbooks.js';
import { UsageError } from '../../src/errors.js';
import { checkRunbookFile, expandRunbookPaths, loadRunbookFile } from '../../src/runbook/loader.js';

/** Fixture paths as a user would type them, relative to the repository. */
function fixture(name: string): string {
  return path.relative(
    process.cwd(),
    fileURLToPath(new URL(`../fixtures/runbooks/include/${name}`, import.meta.url)),
  );
}

describe('include: shared runbook parts', () => {
  it("merges: the runbook's own steps first, the part's after; a default overridden key by key", async () => {
    const rb = await loadRunbookFile(fixture('main.yaml'));
    expect(rb.diagnose.map((s) => s.id)).toEqual(['sessions', 'rollouts']);
    expect(rb.actions.map((s) => s.id)).toEqual(['kill-idle', 'restart-app']);
    expect(rb.verify.map((s) => s.id)).toEqual(['after', 'app-count']);
    // main.yaml gives only `default: web`; type and description come from the part.
    expect(rb.parameters.deployment).toEqual({
      type: 'string',
      default: 'web',
      description: "the application's Deployment",
    });
    expect(rb.parameters.replicas?.default).toBe('3');
    // The part's SQL file is read from the part's folder, not the runbook's.
    const appCount = rb.verify[1];
    expect(appCount?.kind === 'query' && appCount.sql).toContain('app_sessions');
  });

  it.each([
    [
      'missing.yaml',
      `${fixture('missing.yaml')}:4: include[1]: cannot read ${fixture('shared/nope.yaml')}: no such file`,
    ],
    [
      'cycle.yaml',
      `${fixture('shared/loop-2.yaml')}:2: include[0]: include cycle: ${fixture('shared/loop-1.yaml')} -> ${fixture('shared/loop-2.yaml')} -> ${fixture('shared/loop-1.yaml')}`,
    ],
    [
      'stray.yaml',
      `${fixture('shared/stray.yaml')}:2: id: not allowed in an included file, which holds only include, parameters, diagnose, actions, verify, prevent`,
    ],
  ])('%s: one line naming the file and the entry', async (name, expected) => {
    const result = await checkRunbookFile(fixture(name));
    expect(result.errors).toEqual([expected]);
    await expect(loadRunbookFile(fixture(name))).rejects.toThrow(new UsageError(expected));
  });

  it('a mistake in an included file names that file, its line and the path within it', async () => {
    const bad = fixture('shared/bad.yaml');
    expect((await checkRunbookFile(fixture('bad-part.yaml'))).errors).toEqual([
      `${bad}:3: parameters.replicas.default: expected a whole number like 20 (got "three")`,
      `${bad}:9: diagnose[0].args[2]: step "rollouts" uses {deploymnt}, which is not a declared parameter (declared: replicas, deployment)`,
      // The first use is in another file: named with its line, not as a bare path.
      `${bad}:11: actions[0].id: duplicate step id "sessions" (first used at ${fixture('bad-part.yaml')}:8: diagnose[0].id)`,
    ]);
  });

  it('a folder of runbooks leaves its shared/ parts out: they are checked through their includers', async () => {
    const files = await expandRunbookPaths([fixture('')]);
    expect(files.map((f) => path.basename(f))).toEqual([
      'bad-part.yaml',
      'cycle.yaml',
      'main.yaml',
      'missing.yaml',
      'stray.yaml',
    ]);
  });

  it('runbooks validate and show understand it', async () => {
    let out = '';
    let err = '';
    const io = { out: (s: string) => (out += s), err: (s: string) => (err += s) };
    const code = await runRunbooks(
      { sub: 'validate', paths: [fixture('main.yaml'), fixture('cycle.yaml')], output: 'human' },
      io,
    );
    expect(code).toBe(2);
    expect(out).toContain(`ok ${fixture('main.yaml')}\n`);
    expect(out).toContain(`${fixture('shared/loop-2.yaml')}:2: include[0]: include cycle:`);
    expect(err).toBe('1 of 2 runbooks invalid\n');
    out = '';
    await runRunbooks({ sub: 'show', id: fixture('main.yaml'), paths: [], output: 'human' }, io);
    expect(out).toContain('rollouts [kubectl] Rollouts');
    expect(out).toContain('     command: kubectl rollout restart deployment/{deployment}');
  });

  it('the bundled runbooks share the application side and keep their own read_service', async () => {
    const [pg, my] = await Promise.all(
      ['postgres', 'mysql'].map((e) => loadRunbookFile(`runbooks/${e}/pool-exhausted.yaml`)),
    );
    expect(pg?.parameters.read_service?.default).toBe('postgres-read');
    expect(my?.parameters.read_service?.default).toBe('mysql-read');
    for (const rb of [pg, my]) {
      expect(rb?.diagnose.slice(-8).map((s) => s.id)).toEqual([
        'app-pool',
        'app-pool-trend',
        'app-deployment',
        'app-pods',
        'app-logs-leaks',
        'recent-changes',
        'app-rollouts',
        'recent-db-code-changes',
      ]);
      expect(rb?.verify.at(-1)?.id).toBe('verify-app-pool');
    }
  });
});
