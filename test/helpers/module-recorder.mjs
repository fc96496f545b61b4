// Records every module a Node process loads, for test/integration/startup.test.ts.
// Use: NODE_OPTIONS="--import=<file URL of this file>" POOLCTL_MODULE_LOG=/tmp/x.log node …
//
// Three sources, appended to POOLCTL_MODULE_LOG one entry a line:
// - an ESM `load` hook (module-recorder-hooks.mjs) sees every module loaded through `import`:
//   ES modules, and CommonJS packages imported from ESM (`import pg from 'pg'`);
// - at exit, the CommonJS cache lists what `require()` loaded inside CommonJS packages, which on
//   Node 20 does not pass through the ESM hooks;
// - at exit, Node's own modules, as `node-internal:<id>` (e.g. `internal/deps/undici/undici`).
import fs from 'node:fs';
import module from 'node:module';

const file = process.env.POOLCTL_MODULE_LOG;
if (file) {
  module.register('./module-recorder-hooks.mjs', import.meta.url, { data: { file } });
  process.on('exit', () => {
    const cjs = Object.keys(module._cache ?? {});
    const internal = (process.moduleLoadList ?? [])
      .filter((entry) => entry.startsWith('NativeModule '))
      .map((entry) => `node-internal:${entry.slice('NativeModule '.length)}`);
    fs.appendFileSync(file, [...cjs, ...internal].map((line) => `${line}\n`).join(''));
  });
}
