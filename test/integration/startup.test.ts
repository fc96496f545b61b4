import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import {
  pathWithThisNode,
  poolctlBin,
  repoRoot,
  runCli,
  type CliResult,
} from '../helpers/run-cli.js';

// DESIGN.md "Start-up budget": `--help` loads commander alone, and each command imports only what
// its path needs. Timing belongs in bench/startup.ts; this test checks which modules load, which
// is what the timing follows from and what a careless top-level import breaks.
//
// dist/ is an esbuild bundle (scripts/bundle.js) with the dependencies inside its chunks, so a
// package counts as loaded when a file of it under node_modules loads, or a chunk that holds it
// (dist/bundle-meta.json, esbuild's metafile, says which).

const recorder = pathToFileURL(path.join(repoRoot, 'test', 'helpers', 'module-recorder.mjs')).href;

/** Everything heavy that `--help` must not load (DESIGN.md's measured import costs). */
const HEAVY = [
  'pg',
  'mysql2',
  '@inquirer/*',
  'cli-table3',
  'execa',
  'undici',
  'yaml',
  'zod',
  'chalk',
  'yocto-spinner',
  'asciichart',
];

/** The sources of poolctl itself that `--help` may load. */
const START_UP_SOURCES = [
  'src/cli.ts',
  'src/engines.ts',
  'src/errors.ts',
  'src/version.ts',
  'src/interrupt.ts',
];

/** poolctl's own source files bundled into the dist files a run loaded. */
function sourcesLoaded(trace: Traced): string[] {
  const meta = JSON.parse(
    readFileSync(path.join(repoRoot, 'dist', 'bundle-meta.json'), 'utf8'),
  ) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  const loadedFiles = new Set(trace.modules.map((m) => m.replace(/^file:\/\//, '')));
  return Object.entries(meta.outputs)
    .filter(([output]) => loadedFiles.has(path.resolve(repoRoot, output)))
    .flatMap(([, { inputs }]) => Object.keys(inputs).filter((i) => i.startsWith('src/')));
}

/** Chunk file (absolute path) → the packages bundled into it; empty when dist/ is not bundled. */
function chunkPackages(): Map<string, string[]> {
  const metaFile = path.join(repoRoot, 'dist', 'bundle-meta.json');
  const chunks = new Map<string, string[]>();
  if (!existsSync(metaFile)) return chunks;
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  for (const [output, { inputs }] of Object.entries(meta.outputs)) {
    const packages = new Set(Object.keys(inputs).flatMap((input) => packageOf(`/${input}`)));
    chunks.set(path.resolve(repoRoot, output), [...packages]);
  }
  return chunks;
}

let chunks: Map<string, string[]>;
let logDir: string;
let runs = 0;

interface Traced {
  result: CliResult;
  /** Every module file the process loaded (URLs and CommonJS paths, deduplicated). */
  modules: string[];
  /** The npm packages those files belong to, e.g. `commander`, `@inquirer/core`. */
  packages: Set<string>;
}

/** Runs the built CLI with the module recorder preloaded. */
async function traced(args: string[]): Promise<Traced> {
  const log = path.join(logDir, `modules-${++runs}.log`);
  const result = await runCli(args, {
    env: {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${recorder}`.trim(),
      POOLCTL_MODULE_LOG: log,
    },
  });
  return { result, ...readLog(log) };
}

function readLog(log: string): Omit<Traced, 'result'> {
  const modules = [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))];
  return { modules, packages: new Set(modules.flatMap(packagesIn)) };
}

/** The packages a loaded module file is, or holds when it is a chunk of the bundle. */
function packagesIn(module: string): string[] {
  const file = module.startsWith('file:') ? fileURLToPath(module) : module;
  return [...packageOf(file), ...(chunks.get(file) ?? [])];
}

/** `…/node_modules/@scope/name/lib/x.js` → `@scope/name`; poolctl's own files → nothing. */
function packageOf(module: string): string[] {
  const at = module.lastIndexOf('/node_modules/');
  if (at < 0) return [];
  const parts = module.slice(at + '/node_modules/'.length).split('/');
  return [parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!];
}

/** The loaded packages among `names` (`@scope/*` matches the whole scope). */
function loaded(trace: Traced, names: string[]): string[] {
  return [...trace.packages].filter((pkg) =>
    names.some((name) => (name.endsWith('/*') ? pkg.startsWith(name.slice(0, -1)) : pkg === name)),
  );
}

/** Fails naming the offending packages and the module files they were loaded through. */
function expectNoneLoaded(trace: Traced, names: string[]): void {
  const offenders = loaded(trace, names);
  const files = trace.modules.filter((m) => packagesIn(m).some((pkg) => offenders.includes(pkg)));
  expect(offenders, `loaded:\n${files.slice(0, 20).join('\n')}`).toEqual([]);
}

beforeAll(() => {
  chunks = chunkPackages();
  logDir = mkdtempSync(path.join(tmpdir(), 'poolctl-startup-'));
});
afterAll(() => {
  rmSync(logDir, { recursive: true, force: true });
});

describe('start-up: what each command loads', () => {
  it('the recorder sees CommonJS packages imported from ESM, their requires and Node internals', () => {
    const log = path.join(logDir, 'recorder.log');
    const run = spawnSync(
      process.execPath,
      [`--import=${recorder}`, '--input-type=module', '-e', "await import('pg'); Response;"],
      { cwd: repoRoot, env: { ...process.env, POOLCTL_MODULE_LOG: log }, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    const { modules, packages } = readLog(log);
    expect(modules.some((m) => m.endsWith('/node_modules/pg/lib/index.js'))).toBe(true);
    expect(modules.some((m) => m.endsWith('/node_modules/pg/lib/client.js'))).toBe(true);
    expect(modules).toContain('node-internal:internal/deps/undici/undici');
    expect([...packages]).toEqual(expect.arrayContaining(['pg', 'pg-protocol']));
  });

  it('bin/poolctl.js finds dist/ through a symlink, as npm links it into node_modules/.bin', () => {
    const link = path.join(logDir, 'poolctl');
    symlinkSync(path.relative(logDir, poolctlBin), link);
    const PATH = pathWithThisNode();
    const run = spawnSync(link, ['--version'], {
      cwd: logDir,
      env: { ...process.env, PATH },
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('`poolctl --help` loads commander and nothing heavy', async () => {
    const trace = await traced(['--help']);
    expect(trace.result.code).toBe(0);
    expect(trace.result.stdout).toContain('Usage: poolctl');
    expect([...trace.packages]).toContain('commander');
    expectNoneLoaded(trace, HEAVY);
    // Of poolctl's own code only the wiring: the JSON report and the redaction load when used.
    expect(sourcesLoaded(trace).filter((f) => !START_UP_SOURCES.includes(f))).toEqual([]);
  });

  it('`poolctl diagnose --help` loads nothing heavy', async () => {
    const trace = await traced(['diagnose', '--help']);
    expect(trace.result.code).toBe(0);
    expect(trace.result.stdout).toContain('Usage: poolctl diagnose');
    expectNoneLoaded(trace, HEAVY);
  });

  it('`poolctl runbooks list` loads neither the YAML parser, the schema library nor a driver', async () => {
    const trace = await traced(['runbooks', 'list']);
    expect(trace.result.code, trace.result.stderr).toBe(0);
    expect(trace.result.stdout).toContain('postgres/pool-exhausted');
    expectNoneLoaded(trace, ['yaml', 'zod', 'pg', 'mysql2']);
  });
});

describe('start-up: a JSON diagnose against a real PostgreSQL', () => {
  let server: PgServer;
  let held: HeldSessions;

  beforeAll(async () => {
    server = await startPostgres();
    held = await holdSessions(server.appUrl, { idle: 3, idleInTx: 2, long: 2 });
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  it('loads pg, and neither prompts, runbook sources, mysql2 nor box tables', async () => {
    const trace = await traced([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--output',
      'json',
      '--set',
      'long_query_after=0s',
      '--set',
      'leak_idle_after=0s',
      '--set',
      'idle_in_tx_after=0s',
    ]);
    expect([0, 4], trace.result.stderr).toContain(trace.result.code);
    expect(JSON.parse(trace.result.stdout)).toMatchObject({ runbook: 'postgres/pool-exhausted' });
    // The positive control: the driver is there, so the recorder saw this run's imports.
    expect([...trace.packages]).toContain('pg');
    expectNoneLoaded(trace, [
      '@inquirer/*',
      'yaml',
      'zod',
      'mysql2',
      'cli-table3',
      'asciichart',
      // The process and HTTP seams load their libraries when kubectl or Prometheus is used.
      'execa',
      'undici',
    ]);
    // Node 20 has no `navigator`, and pg's Cloudflare check then builds a `Response`, loading
    // Node's fetch (~13 ms); scripts/bundle.js gives pg a navigator of its own.
    const fetch = trace.modules.filter((m) => m.startsWith('node-internal:internal/deps/undici'));
    expect(fetch, "pg's runtime probe loaded Node's fetch: see scripts/bundle.js").toEqual([]);
    // A plain connection: node:tls loads only for TLS (src/targets/tls-trust.ts).
    expect(trace.modules).not.toContain('node-internal:tls');
  });
});
