/**
 * The runbooks shipped with poolctl, compiled and validated at build time into `dist/runbooks.json`
 * (scripts/compile-runbooks.js). Reading them costs one JSON.parse: this path must never import
 * the YAML parser or the schema library, which would add ~60 ms to every diagnose.
 */
import { readFileSync } from 'node:fs';
import { engineOf } from '../engines.js';
import { UsageError } from '../errors.js';
import type { Engine, Runbook } from './types.js';

// From dist/runbook/bundled.js the JSON is ../runbooks.json; from src/runbook/bundled.ts (tests
// run the sources) it is the last build's ../../dist/runbooks.json.
const LOCATIONS = [
  new URL('../runbooks.json', import.meta.url),
  new URL('../../dist/runbooks.json', import.meta.url),
];

let cache: Runbook[] | undefined;

/** Every bundled runbook, sorted by id. */
export function bundledRunbooks(): Runbook[] {
  if (cache) return cache;
  for (const url of LOCATIONS) {
    let text: string;
    try {
      text = readFileSync(url, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    cache = (JSON.parse(text) as { runbooks: Runbook[] }).runbooks;
    return cache;
  }
  // A broken install or a missing build, not the operator's mistake: exit 1.
  throw new Error('the bundled runbooks (dist/runbooks.json) are missing: run `npm run build`');
}

export function findRunbook(id: string): Runbook | undefined {
  return bundledRunbooks().find((r) => r.id === id);
}

function knownIds(): string {
  return bundledRunbooks()
    .map((r) => r.id)
    .join(', ');
}

/** The runbook a target's engine gets without `--runbook` (src/engines.ts: `<engine>/pool-exhausted`). */
export function defaultRunbookFor(engine: Engine): Runbook {
  const id = engineOf(engine).defaultRunbook;
  const rb = findRunbook(id);
  if (!rb)
    throw new UsageError(
      `no bundled runbook ${id} for a ${engine} target (bundled: ${knownIds()}); pass --runbook FILE.yaml`,
    );
  return rb;
}

/** A path rather than an id: `./x.yaml`, `/abs/x`, `runbooks/postgres/x.yml`. */
export function looksLikePath(s: string): boolean {
  return /\.ya?ml$/i.test(s) || s.startsWith('.') || s.startsWith('/') || s.includes('\\');
}

/** `--runbook ID|FILE`: a bundled id, else a YAML file validated by the loader. */
export async function loadRunbookById(idOrPath: string): Promise<Runbook> {
  const rb = looksLikePath(idOrPath) ? undefined : findRunbook(idOrPath);
  if (rb) return rb;
  if (looksLikePath(idOrPath)) {
    const { loadRunbookFile } = await import('./loader.js');
    return loadRunbookFile(idOrPath);
  }
  throw new UsageError(
    `unknown runbook "${idOrPath}" (bundled: ${knownIds()}; or give the path of a .yaml file)`,
  );
}
