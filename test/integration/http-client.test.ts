import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpError, httpClient } from '../../src/io/http.js';
import { makeTestCa, startHttpStub, type HttpStub, type TestCa } from '../helpers/http-stub.js';
import { repoRoot } from '../helpers/run-cli.js';

// The HTTP seam's trust and lifetime: a CA file is trusted IN ADDITION to Node's roots and
// NODE_EXTRA_CA_CERTS (Node drops both when a `ca` is given, so the client must add them back);
// NODE_EXTRA_CA_CERTS alone works as Node does it, from the process's start; a finished request
// does not keep the process alive; undici and execa load only when used.

let dir: string;
let corp: TestCa;
let extra: TestCa;
let corpServer: HttpStub;
let extraServer: HttpStub;

const ok = (_req: unknown, res: import('node:http').ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'poolctl-http-'));
  corp = makeTestCa(dir, 'corp');
  extra = makeTestCa(dir, 'extra');
  [corpServer, extraServer] = await Promise.all([
    startHttpStub(ok, { tls: corp }),
    startHttpStub(ok, { tls: extra }),
  ]);
});
afterAll(async () => {
  await Promise.all([corpServer?.close(), extraServer?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = (client: ReturnType<typeof httpClient>, server: HttpStub) =>
  client.request({ method: 'GET', url: new URL(`${server.url}/x`), timeoutMs: 5_000 });

/**
 * Runs a module in a fresh node (TypeScript through tsx), with `env` added. Asynchronously: the
 * servers it talks to run in this process.
 */
function runModule(
  source: string,
  env: NodeJS.ProcessEnv,
  extraArgs: string[] = [],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const file = path.join(dir, `script-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(file, source);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...extraArgs, '--import', 'tsx', file],
      { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({ status: error ? ((error.code as number) ?? 1) : 0, stdout, stderr }),
    );
  });
}

const src = (file: string): string => pathToFileURL(path.join(repoRoot, 'src', file)).href;

describe('httpClient: trust', () => {
  it('an unknown CA is a "tls" HttpError naming the flag, in one line', async () => {
    const error = await get(httpClient({}), corpServer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).reason).toBe('tls');
    expect((error as HttpError).message).toBe(
      `${corpServer.url}/x: certificate not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE): pass the CA with --prometheus-ca FILE or NODE_EXTRA_CA_CERTS=FILE`,
    );
  });

  it('the CA file is trusted, and NODE_EXTRA_CA_CERTS still is beside it', async () => {
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = extra.caFile;
    try {
      const client = httpClient({ caFile: corp.caFile });
      expect((await get(client, corpServer)).body).toBe('ok');
      expect((await get(client, extraServer)).body).toBe('ok');
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
    }
  });

  it('an unreadable CA file is a "tls" HttpError naming the flag', async () => {
    const missing = path.join(dir, 'gone.pem');
    const error = await get(httpClient({ caFile: missing }), corpServer).catch((e: unknown) => e);
    expect((error as HttpError).reason).toBe('tls');
    expect((error as HttpError).message).toBe(
      `--prometheus-ca ${missing}: cannot read it (ENOENT)`,
    );
  });

  it('NODE_EXTRA_CA_CERTS alone, from the start of the process, works as Node does it', async () => {
    const script = `
      import { httpClient } from ${JSON.stringify(src('io/http.ts'))};
      const r = await httpClient({}).request({ method: 'GET', url: new URL(${JSON.stringify(`${extraServer.url}/x`)}), timeoutMs: 5000 });
      console.log(r.status, r.body);
    `;
    const run = await runModule(script, { NODE_EXTRA_CA_CERTS: extra.caFile });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('200 ok');
  });
});

describe('httpClient: lifetime and loading', () => {
  it('a finished request leaves no socket that keeps the process alive', async () => {
    const script = `
      import { httpClient } from ${JSON.stringify(src('io/http.ts'))};
      const client = httpClient({ caFile: ${JSON.stringify(corp.caFile)} });
      const r = await client.request({ method: 'GET', url: new URL(${JSON.stringify(`${corpServer.url}/x`)}), timeoutMs: 5000 });
      console.log(r.status, Date.now());
    `;
    const run = await runModule(script, {});
    expect(run.stderr).toBe('');
    const [status, answeredAt] = run.stdout.trim().split(' ').map(Number);
    expect(status).toBe(200);
    // undici keeps the connection for reuse (4 s by default) but unrefs it when idle: the
    // process ends well before the connection would (slack for a loaded machine).
    const exitedAt = Date.now();
    expect(exitedAt - answeredAt!).toBeLessThan(3_500);
  });

  it('importing the seams and both adapters loads neither undici nor execa; using them does', async () => {
    const recorder = pathToFileURL(
      path.join(repoRoot, 'test', 'helpers', 'module-recorder.mjs'),
    ).href;
    const log = path.join(dir, 'modules.log');
    const script = `
      await import(${JSON.stringify(src('io/http.ts'))});
      await import(${JSON.stringify(src('io/process.ts'))});
      await import(${JSON.stringify(src('targets/prometheus.ts'))});
      await import(${JSON.stringify(src('targets/kubernetes.ts'))});
      const { appendFileSync } = await import('node:fs');
      appendFileSync(process.env.POOLCTL_MODULE_LOG, '--- used ---\\n');
      const { httpClient } = await import(${JSON.stringify(src('io/http.ts'))});
      const { execaRunner } = await import(${JSON.stringify(src('io/process.ts'))});
      await httpClient({}).request({ method: 'GET', url: new URL('http://127.0.0.1:1/'), timeoutMs: 1000 }).catch(() => {});
      await execaRunner.run('true', [], { timeoutMs: 5000 });
    `;
    const run = await runModule(script, { POOLCTL_MODULE_LOG: log }, [`--import=${recorder}`]);
    expect(run.status, run.stderr).toBe(0);
    const lines = readFileSync(log, 'utf8').split('\n');
    const cut = lines.indexOf('--- used ---');
    expect(cut).toBeGreaterThan(0);
    const before = lines.slice(0, cut);
    const after = lines.slice(cut);
    const of = (pkg: string) => (line: string) => line.includes(`/node_modules/${pkg}/`);
    expect(before.filter(of('undici'))).toEqual([]);
    expect(before.filter(of('execa'))).toEqual([]);
    // The positive control: the recorder sees them once they are used.
    expect(after.some(of('undici'))).toBe(true);
    expect(after.some(of('execa'))).toBe(true);
  });

  it('bundled as scripts/bundle.js bundles dependencies (esbuild, ESM chunks), both seams still work', async () => {
    // A dynamic import of a CommonJS package (undici) has only `default` in the bundle, while
    // Node's own loader also offers the named exports: a test from the sources alone misses it.
    const esbuild = await import('esbuild');
    const entry = path.join(dir, 'bundle-entry.ts');
    writeFileSync(
      entry,
      `
      const { httpClient } = await import(${JSON.stringify(path.join(repoRoot, 'src/io/http.ts'))});
      const { execaRunner } = await import(${JSON.stringify(path.join(repoRoot, 'src/io/process.ts'))});
      const r = await httpClient({ caFile: ${JSON.stringify(corp.caFile)} }).request({ method: 'GET', url: new URL(${JSON.stringify(`${corpServer.url}/x`)}), timeoutMs: 5000 });
      const p = await execaRunner.run('echo', ['hi'], { timeoutMs: 5000 });
      console.log(r.status, r.body, p.stdout.trim());
    `,
    );
    const outdir = path.join(dir, 'bundle');
    await esbuild.build({
      absWorkingDir: repoRoot,
      entryPoints: { entry },
      outdir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      banner: {
        js: "import { createRequire as __poolctlCreateRequire } from 'node:module'; const require = __poolctlCreateRequire(import.meta.url);",
      },
      logLevel: 'silent',
    });
    const run = await new Promise<{ stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [path.join(outdir, 'entry.js')],
        { cwd: dir, encoding: 'utf8' },
        (_e, stdout, stderr) => resolve({ stdout, stderr }),
      ),
    );
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('200 ok hi');
  });
});
