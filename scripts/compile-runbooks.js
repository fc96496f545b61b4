// Compiles the bundled YAML runbooks (runbooks/<engine>/<name>.yaml + their .sql files) into
// dist/runbooks.json, validated and with the SQL inlined, so that a diagnose reads one JSON file
// and never loads the YAML parser or the schema library. Run by `npm run build` after the bundle,
// through tsx: the loader is TypeScript (src/runbook/loader.ts), and tsc emits nothing.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sources = path.join(root, 'runbooks');
const out = path.join(root, 'dist', 'runbooks.json');

const { findRunbookSources, validateRunbookFiles } = await import('../src/runbook/loader.js');

// Paths relative to the repository, so error lines read runbooks/postgres/x.yaml:12: ….
const files = (await findRunbookSources(sources)).map((f) => path.relative(process.cwd(), f) || f);
if (files.length === 0) {
  console.error(
    `compile-runbooks: no runbooks found under ${sources} (expected runbooks/<engine>/<name>.yaml)`,
  );
  process.exit(1);
}

const results = await validateRunbookFiles(files, { bundled: true });
const failed = results.filter((r) => !r.ok);
if (failed.length) {
  for (const r of failed) for (const line of r.errors) console.error(line);
  console.error(
    `compile-runbooks: ${failed.length} of ${results.length} runbooks are invalid; dist/runbooks.json not written`,
  );
  process.exit(1);
}

const runbooks = results
  .map((r) => ({ ...r.runbook, origin: `bundled:${r.runbook.id}` }))
  .sort((a, b) => a.id.localeCompare(b.id));
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ runbooks })}\n`);
console.error(
  `compile-runbooks: ${runbooks.map((r) => r.id).join(', ')} -> ${path.relative(process.cwd(), out)}`,
);
