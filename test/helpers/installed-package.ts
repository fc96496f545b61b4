import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** poolctl as npm users get it: the packed tarball, installed globally into a prefix of its own. */
export interface InstalledPackage {
  /** The tarball `npm pack` wrote. */
  tarball: string;
  /** `<prefix>/bin/poolctl`, the link npm made to the package's bin. */
  bin: string;
  /** `<prefix>/lib/node_modules/poolctl`. */
  packageDir: string;
  /** Every file under packageDir, relative to it, with / separators, sorted. */
  files: string[];
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * `npm pack` of the checkout's last build (run `npm run build` first), then `npm install -g
 * --prefix <dir>/prefix --offline` of that tarball. Offline: every runtime dependency is bundled
 * into dist/, so the package has none to fetch, and a registry is never asked.
 */
export function packAndInstall(dir: string): InstalledPackage {
  const npm = (args: string[], cwd: string): string =>
    execFileSync('npm', args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // npm's settings from an `npm run`/`npx` around the tests (global, prefix…) stay out.
      env: Object.fromEntries(
        Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)),
      ) as NodeJS.ProcessEnv,
    });
  const packDir = path.join(dir, 'pack');
  const prefix = path.join(dir, 'prefix');
  mkdirSync(packDir, { recursive: true });
  const [packed] = JSON.parse(
    npm(['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], repoRoot),
  ) as { filename: string }[];
  const tarball = path.join(packDir, packed!.filename);
  npm(['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], dir);
  const packageDir = path.join(prefix, 'lib', 'node_modules', 'poolctl');
  return {
    tarball,
    bin: path.join(prefix, 'bin', 'poolctl'),
    packageDir,
    files: filesUnder(packageDir),
  };
}

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) =>
      path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'),
    )
    .sort();
}
