#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ caches compiled code between runs; Node 20 has no such function.
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();
// dist/ is an esbuild bundle (scripts/bundle.js): with --debug, stack traces name src/ files.
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
const { main } = await import('../dist/cli.js');
await main(process.argv.slice(2));
