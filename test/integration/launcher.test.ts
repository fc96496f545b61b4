import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { pathWithThisNode, poolctlLauncher, repoRoot, runCli } from '../helpers/run-cli.js';

// bin/poolctl starts diagnose, mitigate and verify from the V8 start-up snapshot
// (dist/poolctl.blob) only when the node on PATH is the very file that built it, unchanged since,
// and the blob was built for this dist/: a blob from another Node build crashes Node. `sh -x`
// shows the command it chose; the whole integration suite runs through it.

const blob = path.join(repoRoot, 'dist', 'poolctl.blob');

/** What `sh -x` shows the launcher doing. */
function traced(launcher: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return spawnSync('sh', ['-x', launcher, ...args], {
    env: { ...process.env, PATH: pathWithThisNode(), ...env },
    encoding: 'utf8',
  }).stderr;
}

/** The command line the launcher exec'd, from `sh -x`'s trace. */
function chosen(launcher: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const trace = traced(launcher, args, env);
  const execs = trace.split('\n').filter((line) => line.startsWith('+ exec '));
  expect(execs, trace).toHaveLength(1);
  return execs[0]!;
}

/** Whether the launcher kept NODE_EXTRA_CA_CERTS from Node (handed it over to poolctl). */
function deferredCa(launcher: string, env: NodeJS.ProcessEnv = {}): boolean {
  const trace = traced(launcher, ['--version'], { NODE_EXTRA_CA_CERTS: '/etc/ssl/x.pem', ...env });
  return trace.includes('+ unset NODE_EXTRA_CA_CERTS');
}

describe('the launcher', () => {
  it('was built with a snapshot for this node and this dist/', () => {
    const [node, dist] = readFileSync(`${blob}.txt`, 'utf8').split('\n');
    expect(path.resolve(node!)).toBe(process.execPath);
    expect(dist).toBe(path.join(repoRoot, 'dist'));
  });

  it('starts diagnose, mitigate and verify from the snapshot, everything else the usual way', () => {
    for (const command of ['diagnose', 'mitigate', 'verify']) {
      expect(chosen(poolctlLauncher, [command, '--help'])).toMatch(
        new RegExp(`--snapshot-blob \\S*/dist/poolctl\\.blob -- ${command} --help$`),
      );
    }
    for (const args of [['--help'], ['transcript', 'list'], ['runbooks', 'list'], ['drill'], []]) {
      expect(chosen(poolctlLauncher, args)).toMatch(/bin\/poolctl\.js/);
    }
  });

  it('--debug, POOLCTL_NO_SNAPSHOT=1 and any NODE_OPTIONS take the usual way', () => {
    expect(chosen(poolctlLauncher, ['diagnose', '--debug'])).not.toContain('--snapshot-blob');
    expect(chosen(poolctlLauncher, ['diagnose'], { POOLCTL_NO_SNAPSHOT: '1' })).not.toContain(
      '--snapshot-blob',
    );
    // V8 flags must match the blob's exactly, or Node refuses it (exit 14) before poolctl runs.
    const options = { NODE_OPTIONS: '--max-old-space-size=512' };
    expect(chosen(poolctlLauncher, ['diagnose', '--help'], options)).not.toContain(
      '--snapshot-blob',
    );
    const run = spawnSync(poolctlLauncher, ['diagnose', '--help'], {
      env: { ...process.env, PATH: pathWithThisNode(), ...options },
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    expect(deferredCa(poolctlLauncher)).toBe(true);
    expect(deferredCa(poolctlLauncher, options)).toBe(false);
  });

  it('never hands the blob to another node, nor to a node replaced since the build', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'poolctl-launcher-'));
    try {
      // Another executable called node first on PATH (a wrapper, as version managers install).
      writeFileSync(path.join(dir, 'node'), `#!/bin/sh\nexec ${process.execPath} "$@"\n`);
      chmodSync(path.join(dir, 'node'), 0o755);
      const other = chosen(poolctlLauncher, ['diagnose', '--help'], {
        PATH: `${dir}:${process.env.PATH}`,
      });
      expect(other).not.toContain('--snapshot-blob');
      expect(other).toContain(`${dir}/node`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const copy = mkdtempSync(path.join(tmpdir(), 'poolctl-launcher-'));
    try {
      cpSync(path.join(repoRoot, 'bin'), path.join(copy, 'bin'), { recursive: true });
      cpSync(path.join(repoRoot, 'dist'), path.join(copy, 'dist'), { recursive: true });
      symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'));
      cpSync(path.join(repoRoot, 'package.json'), path.join(copy, 'package.json'));
      // Built for another dist/ (this one was copied): the usual way, and it still works.
      const moved = path.join(copy, 'bin', 'poolctl');
      expect(chosen(moved, ['diagnose', '--help'])).not.toContain('--snapshot-blob');
      expect(execFileSync(moved, ['--version'], { encoding: 'utf8' }).trim()).toMatch(/^\d+\./);
      expect(deferredCa(moved)).toBe(false);
      // Stamped for this copy and this node (its modification time copied as the build does).
      const stamp = path.join(copy, 'dist', 'poolctl.blob.txt');
      const reference = path.join(copy, 'dist', 'poolctl.blob.node');
      writeFileSync(stamp, `${process.execPath}\n${path.join(copy, 'dist')}\nbundled-ca\n`);
      execFileSync('touch', ['-r', process.execPath, reference]);
      expect(chosen(moved, ['diagnose', '--help'])).toContain('--snapshot-blob');
      expect(deferredCa(moved)).toBe(true);
      // A node that reads the system's CA store keeps NODE_EXTRA_CA_CERTS (poolctl could only
      // add the file to Node's bundled roots).
      writeFileSync(stamp, `${process.execPath}\n${path.join(copy, 'dist')}\nsystem-ca\n`);
      expect(deferredCa(moved)).toBe(false);
      expect(chosen(moved, ['diagnose', '--help'])).toContain('--snapshot-blob');
      // The node file replaced since the build (same path, another modification time; dpkg
      // keeps a package's own dates, so an older one counts as well).
      const old = new Date(Date.now() - 365 * 24 * 3600 * 1000);
      utimesSync(reference, old, old);
      expect(chosen(moved, ['diagnose', '--help'])).not.toContain('--snapshot-blob');
      expect(deferredCa(moved)).toBe(false);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('works through a symlink, as npm links it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'poolctl-link-'));
    try {
      symlinkSync(poolctlLauncher, path.join(dir, 'poolctl'));
      expect(chosen(path.join(dir, 'poolctl'), ['diagnose', '--help'])).toContain(
        '--snapshot-blob',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a run from the snapshot', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('reads the environment of the run, not of the build', async () => {
    // pg reads $USER at import, which the snapshot holds evaluated; poolctl passes the user it
    // resolved. Both ways must agree on who connected. (Colours are decided at run time by
    // modules the snapshot leaves unevaluated; the terminal tests run through it.)
    const args = ['diagnose', '--output', 'json', '--pg', server.superuserUrl];
    const fromSnapshot = await runCli(args, { env: { USER: 'someone-else' } });
    const usual = await runCli(args, { env: { USER: 'someone-else', POOLCTL_NO_SNAPSHOT: '1' } });
    for (const run of [fromSnapshot, usual]) expect(run.code, run.stderr).toBe(0);
    const strip = (s: string) => JSON.parse(s) as { targets: unknown; status: string };
    expect(strip(fromSnapshot.stdout).targets).toEqual(strip(usual.stdout).targets);
  });
});
