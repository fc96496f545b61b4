import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startCli } from '../helpers/run-cli.js';
import { readEvents, sleep } from '../helpers/expect.js';

// Fault suite: Ctrl-C while `mitigate --action restart-app` waits on `kubectl rollout status`
// (a rollout that takes minutes). The restart has been sent and is recorded; the wait is the
// part that is safe to stop: poolctl stops it, records the rollout as not confirmed, closes the
// transcript as interrupted and exits 130 at once — it neither hangs on the rollout nor claims it.

describe('Ctrl-C during a cluster change (restart-app, rollout status waiting)', () => {
  let server: PgServer;
  let kubectl: KubectlStandin;
  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 40 });
    kubectl = writeKubectlStandin({
      contexts: ['prod'],
      // The rollout never finishes by itself: only the interrupt can end this wait.
      answers: [{ args: ['rollout', 'status'], hang: true }],
    });
  }, 120_000);
  afterAll(async () => {
    kubectl?.remove();
    await server?.stop();
  });

  it('stops the wait, records the restart as done and the rollout as not confirmed, exits 130', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-int-kube-')), 't.jsonl');
    const started = startCli(
      [
        'mitigate',
        '--pg',
        server.superuserUrl,
        '--kube-context',
        'prod',
        '--namespace',
        'shop',
        '--kubectl',
        kubectl.bin,
        '--action',
        'restart-app',
        '--yes',
        '--transcript',
        transcript,
      ],
      { env: kubectl.env },
    );
    // Interrupt once the stand-in has been asked for the rollout's status: the wait is on.
    const deadline = Date.now() + 20_000;
    while (!kubectl.calls().some((args) => args.includes('status'))) {
      if (Date.now() > deadline) throw new Error(`rollout status never ran: ${started.stderr()}`);
      await sleep(10);
    }
    await sleep(200);
    const signalled = Date.now();
    started.child.kill('SIGINT');
    const code = await started.exited;
    const tookMs = Date.now() - signalled;

    expect(code, started.stderr()).toBe(130);
    // Nothing hangs: the wait is stopped, not sat out (the stand-in would wait forever).
    expect(tookMs).toBeLessThan(5_000);
    expect(started.stderr()).toContain('finishing the step in flight');
    expect(kubectl.calls()).toEqual([
      ['--context=prod', '--namespace=shop', 'rollout', 'restart', 'deployment/api'],
      ['--context=prod', '--namespace=shop', 'rollout', 'status', 'deployment/api'],
    ]);

    const events = readEvents(transcript);
    const types = events.map((e) => e.type);
    // Audit first: the intent (the exact argv) before any outcome.
    const intent = events.find((e) => e.type === 'change.intent')!;
    expect(intent).toMatchObject({
      step: 'restart-app',
      target: 'kubernetes',
      approvedBy: '--yes',
    });
    expect(intent.commands).toEqual([
      [kubectl.bin, '--context=prod', '--namespace=shop', 'rollout', 'restart', 'deployment/api'],
    ]);
    const outcomes = events.filter((e) => e.type === 'change.outcome');
    expect(types.indexOf('change.intent')).toBeLessThan(types.indexOf('change.outcome'));
    // The restart was sent and done; whether the rollout finished is unknown, and said so.
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'not-confirmed']);
    expect(outcomes[1]!.command).toEqual([
      kubectl.bin,
      '--context=prod',
      '--namespace=shop',
      'rollout',
      'status',
      'deployment/api',
    ]);
    expect(outcomes[1]!.detail).toMatch(/interrupt/i);
    expect(events.find((e) => e.type === 'action')).toMatchObject({
      id: 'restart-app',
      executed: true,
    });
    expect(events.at(-1)).toMatchObject({
      type: 'session.end',
      status: 'interrupted',
      exitCode: 130,
    });
    // The stand-in's hanging `rollout status` was stopped with poolctl, not left behind.
    await sleep(500);
    expect(processesRunning(kubectl.bin)).toEqual([]);
  }, 60_000);
});

/** The pids of processes whose command line names `file` (the stand-in's own temporary path). */
function processesRunning(file: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .filter((line) => line.includes(file))
    .map((line) => line.trim());
}
