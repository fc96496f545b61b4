import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import {
  pathWithThisNode,
  poolctlBin,
  repoRoot,
  runCli,
  type CliResult,
} from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// `poolctl … --output json > out.json` in CI: whatever the exit, stdout holds exactly one JSON
// document, with `error: {code, message}` when the run failed, and stderr keeps its one line.

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions reach into the document
type Doc = Record<string, any>;

/** The one document on stdout; fails unless stdout is exactly one line of JSON. */
function oneDocument(result: CliResult): Doc {
  const lines = result.stdout.split('\n').filter((l) => l !== '');
  expect(lines, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toHaveLength(1);
  return JSON.parse(lines[0]!) as Doc;
}

function expectFailure(result: CliResult, code: number, fragment: string) {
  expect(result.code, result.stderr).toBe(code);
  const doc = oneDocument(result);
  expect(doc.status).toBe('unknown');
  expect(doc.error.code).toBe(code);
  expect(doc.error.message).toContain(fragment);
  expect(doc.error.message).not.toMatch(/\n/);
  expect(result.stderr).toContain(fragment);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return doc;
}

describe('--output json prints one document on every exit', () => {
  let server: PgServer;
  let held: HeldSessions | undefined;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 20 });
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  it('exit 2: a flag commander does not know', async () => {
    const result = await runCli(['diagnose', '--output', 'json', '--frobnicate']);
    const doc = expectFailure(result, 2, "unknown option '--frobnicate'");
    expect(doc.error.kind).toBe('usage');
    expect(doc.command).toBe('diagnose');
  });

  it('exit 2: a bad --set value (--output=json spelling)', async () => {
    const result = await runCli([
      'diagnose',
      '--output=json',
      '--pg',
      server.appUrl,
      '--set',
      'kill_idle_after=soon',
    ]);
    expectFailure(result, 2, 'kill_idle_after');
  });

  it('exit 2: no target at all', async () => {
    const result = await runCli(['verify', '--output', 'json']);
    const doc = expectFailure(result, 2, 'no database target');
    expect(doc.command).toBe('verify');
  });

  it('exit 3: a refused port', async () => {
    const port = await freePort();
    const result = await runCli([
      'diagnose',
      '--output',
      'json',
      '--pg',
      `postgres://app@127.0.0.1:${port}/appdb`,
    ]);
    const doc = expectFailure(result, 3, `connection refused at 127.0.0.1:${port}`);
    expect(doc.error.kind).toBe('target');
    // The transcript was opened before the connect: the document points at it.
    expect(doc.transcript).toMatch(/\.jsonl$/);
  });

  it('exit 3: a wrong password, never printed', async () => {
    const url = `postgres://app:wrong-pw-481516@127.0.0.1:${server.port}/appdb`;
    const result = await runCli([
      'mitigate',
      '--action',
      'kill-idle',
      '--output',
      'json',
      '--pg',
      url,
    ]);
    expectFailure(result, 3, 'password authentication failed');
    expect(result.stdout + result.stderr).not.toContain('wrong-pw-481516');
  });

  it('exit 0, 4 and 5 print the command’s own report; 130 (SIGINT during verify --wait) the error document', async () => {
    const healthy = await runCli(['verify', '--output', 'json', '--pg', server.superuserUrl]);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(oneDocument(healthy).error).toBeUndefined();

    held = await holdSessions(server.appUrl, { idle: 15 });
    const unhealthy = await runCli(['verify', '--output', 'json', '--pg', server.superuserUrl]);
    expect(unhealthy.code, unhealthy.stderr).toBe(4);
    expect(oneDocument(unhealthy).error).toBeUndefined();

    await new Promise((r) => setTimeout(r, 1200));
    const declined = await runCli([
      'mitigate',
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--output',
      'json',
      '--pg',
      server.superuserUrl,
    ]);
    expect(declined.code, declined.stderr).toBe(5);
    // The command's own report: the action is there, declined for want of --yes.
    expect(oneDocument(declined).actions[0]).toMatchObject({ id: 'kill-idle', declined: true });

    const stateDir = mkdtempSync(join(tmpdir(), 'poolctl-json-'));
    const child = spawn(
      process.execPath,
      [
        poolctlBin,
        'verify',
        '--wait',
        '60s',
        '--interval',
        '1s',
        '--output',
        'json',
        '--pg',
        server.superuserUrl,
      ],
      {
        cwd: repoRoot,
        env: {
          PATH: pathWithThisNode(),
          HOME: stateDir,
          XDG_STATE_HOME: stateDir,
          CI: 'true',
          NO_COLOR: '1',
        },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      // The first check has run and failed: interrupt the wait.
      if (stderr.includes('not there yet')) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(130);
    const doc = oneDocument({ code: 130, stdout, stderr, durationMs: 0, stateDir });
    expect(doc.error).toMatchObject({ code: 130, kind: 'interrupted' });
    expect(doc.incident).not.toBe('');
  });
});
