import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** poolctl's version from its package.json, read once. */
export function poolctlVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
  return cached;
}
