import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execaRunner, KILL_GRACE_MS, recordingRunner } from '../../src/io/process.js';
import {
  KubectlError,
  openKubernetes,
  resolveKubernetes,
  type KubernetesSpec,
} from '../../src/targets/kubernetes.js';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';

// The kubectl target through the real process runner, against the kubectl stand-in
// (test/helpers/kubectl-standin.ts): the argv it records is the argv poolctl ran.

let kubectl: KubectlStandin;
let dir: string;

beforeAll(() => {
  kubectl = writeKubectlStandin();
  dir = mkdtempSync(path.join(tmpdir(), 'poolctl-kube-target-'));
  // The stand-in finds its log and scenario through the environment poolctl passes on.
  process.env.KUBECTL_STANDIN_LOG = kubectl.env.KUBECTL_STANDIN_LOG;
  process.env.KUBECTL_STANDIN_SCENARIO = kubectl.env.KUBECTL_STANDIN_SCENARIO;
});
afterEach(() => {
  kubectl.clearCalls();
  kubectl.setScenario({});
});
afterAll(() => {
  delete process.env.KUBECTL_STANDIN_LOG;
  delete process.env.KUBECTL_STANDIN_SCENARIO;
  kubectl?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const spec = (over: Partial<KubernetesSpec> = {}): KubernetesSpec => ({
  kubectl: kubectl.bin,
  context: 'standin',
  namespace: 'shop',
  timeoutMs: 10_000,
  from: '--kubectl',
  ...over,
});

async function failure(promise: Promise<unknown>): Promise<KubectlError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KubectlError);
  expect((error as Error).message).not.toContain('\n');
  return error as KubectlError;
}

describe('kubectl target: the argv', () => {
  it('puts the binary, --context and --namespace first, and runs exactly that', async () => {
    const calls: { file: string; args: string[] }[] = [];
    const target = openKubernetes(spec(), recordingRunner(execaRunner, calls));
    const args = ['rollout', 'restart', 'deployment/api'];
    expect(target.argv(args)).toEqual([
      kubectl.bin,
      '--context=standin',
      '--namespace=shop',
      'rollout',
      'restart',
      'deployment/api',
    ]);
    const result = await target.run(args);
    expect(result.stdout).toBe('deployment.apps/api restarted\n');
    expect(calls).toEqual([{ file: kubectl.bin, args: target.argv(args).slice(1) }]);
    expect(kubectl.calls()).toEqual([target.argv(args).slice(1)]);
  });

  it('without a context or namespace, kubectl gets neither flag (its own defaults apply)', async () => {
    const target = openKubernetes(spec({ context: undefined, namespace: undefined }), execaRunner);
    expect(target.argv(['get', 'pods'])).toEqual([kubectl.bin, 'get', 'pods']);
    expect(target.label).toBe(`${kubectl.bin} (current context, the context's namespace)`);
    await target.run(['get', 'pods']);
    expect(kubectl.calls()).toEqual([['get', 'pods']]);
  });

  it('a value that looks like shell or like a flag stays one literal argument', async () => {
    const marker = path.join(dir, 'expanded');
    const target = openKubernetes(spec({ namespace: '-n kube-system' }), execaRunner);
    await target.run(['set', 'env', 'deployment/api', `NOTE=$(touch ${marker})`]);
    expect(kubectl.calls()).toEqual([
      [
        '--context=standin',
        '--namespace=-n kube-system',
        'set',
        'env',
        'deployment/api',
        `NOTE=$(touch ${marker})`,
      ],
    ]);
    expect(existsSync(marker)).toBe(false);
  });

  it('KUBECONFIG passes through to kubectl untouched', async () => {
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = '/etc/poolctl-test/kubeconfig:/home/x/.kube/config';
    try {
      await openKubernetes(spec(), execaRunner).run(['get', 'pods']);
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
    expect(kubectl.callsWithEnv()[0]!.kubeconfig).toBe(
      '/etc/poolctl-test/kubeconfig:/home/x/.kube/config',
    );
  });

  it('labels the target by context and namespace', () => {
    expect(openKubernetes(spec({ kubectl: 'kubectl' }), execaRunner).label).toBe(
      'kubectl (context standin, namespace shop)',
    );
  });
});

describe('kubectl target: failures, each one line', () => {
  it("a context that does not exist: kubectl's own message, reason 'exit'", async () => {
    const target = openKubernetes(spec({ context: 'prod-eu' }), execaRunner);
    const error = await failure(target.run(['get', 'pods']));
    expect(error.reason).toBe('exit');
    expect(error.message).toBe(
      'Error in configuration: context was not found for specified context: prod-eu',
    );
    expect(error.exit?.code).toBe(1);
    // A failing kubectl fails its step alone: the next call is run (and fails on its own).
    const again = await failure(target.run(['logs', '-l', 'app=api']));
    expect(again.reason).toBe('exit');
    expect(kubectl.calls()).toHaveLength(2);
  });

  it("a non-zero exit: the first line of kubectl's stderr, the rest kept", async () => {
    kubectl.setScenario({
      answers: [
        {
          args: ['rollout', 'status'],
          stderr:
            'error: deployment "api" exceeded its progress deadline\nsee kubectl describe deployment/api',
          exitCode: 1,
        },
      ],
    });
    const error = await failure(
      openKubernetes(spec(), execaRunner).run(['rollout', 'status', 'deployment/api']),
    );
    expect(error.message).toBe('error: deployment "api" exceeded its progress deadline');
    expect(error.exit).toEqual({
      code: 1,
      stderr:
        'error: deployment "api" exceeded its progress deadline\nsee kubectl describe deployment/api',
    });
  });

  it("an unreachable API server: kubectl's own sentence, not the klog lines before it", async () => {
    // What kubectl 1.32 printed here for a cluster at 127.0.0.1:1 (two of its four klog lines).
    const klog = (n: number): string =>
      `E1203 17:35:55.94474${n}    8190 memcache.go:265] "Unhandled Error" err="couldn't get current server API group list: Get \\"https://127.0.0.1:1/api?timeout=32s\\": dial tcp 127.0.0.1:1: connect: connection refused"`;
    kubectl.setScenario({
      answers: [
        {
          args: ['get'],
          stderr: `${klog(1)}\n${klog(2)}\nThe connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?`,
          exitCode: 1,
        },
      ],
    });
    const error = await failure(openKubernetes(spec(), execaRunner).run(['get', 'pods']));
    expect(error.message).toBe(
      'The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?',
    );
  });

  it('a missing binary: "kubectl not found … pass --kubectl PATH", then every call skipped at once', async () => {
    const missing = path.join(dir, 'no', 'kubectl');
    const target = openKubernetes(spec({ kubectl: missing }), execaRunner);
    const error = await failure(target.run(['get', 'pods']));
    expect(error.reason).toBe('missing');
    expect(error.message).toBe(`kubectl not found: ${missing} (no such file): pass --kubectl PATH`);
    const skipped = await failure(target.run(['logs']));
    expect(skipped.reason).toBe('unusable');
    expect(skipped.message).toBe(`skipped: kubectl not found (${missing}) earlier in this run`);

    const notOnPath = await failure(
      openKubernetes(spec({ kubectl: 'poolctl-no-kubectl' }), execaRunner).run(['get', 'pods']),
    );
    expect(notOnPath.message).toBe(
      'kubectl not found: poolctl-no-kubectl (not on PATH): pass --kubectl PATH',
    );
  });

  it('a hanging kubectl costs one timeout: killed, then every later call skipped at once', async () => {
    kubectl.setScenario({ answers: [{ args: ['rollout', 'status'], hang: true }] });
    const target = openKubernetes(spec({ timeoutMs: 2_000 }), execaRunner);
    let started = Date.now();
    const error = await failure(target.run(['rollout', 'status', 'deployment/api']));
    const firstTook = Date.now() - started;
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe(
      'kubectl rollout status deployment/api timed out after 2s (stopped)',
    );
    expect(firstTook).toBeGreaterThanOrEqual(2_000 - 300); // timers may seem early under load
    expect(firstTook).toBeLessThan(2_000 + KILL_GRACE_MS + 3_000); // loaded CI machines

    started = Date.now();
    for (const args of [
      ['get', 'pods'],
      ['logs', '-l', 'app=api'],
      ['rollout', 'history', 'deployment/api'],
    ]) {
      const skipped = await failure(target.run(args));
      expect(skipped.reason).toBe('unusable');
      expect(skipped.message).toBe('skipped: kubectl timed out after 2s earlier in this run');
    }
    // Three more steps cost less than one more timeout (nothing was started: see the calls).
    expect(Date.now() - started).toBeLessThan(2_000);
    // Only the hung call ever reached kubectl.
    expect(kubectl.calls()).toHaveLength(1);
  });

  it("a call's own timeout wins over the target's", async () => {
    kubectl.setScenario({ answers: [{ args: ['rollout', 'status'], delayMs: 1_200 }] });
    const target = openKubernetes(spec({ timeoutMs: 500 }), execaRunner);
    const result = await target.run(['rollout', 'status', 'deployment/api'], { timeoutMs: 10_000 });
    expect(result.stderr).toBe('');
  });
});

describe('resolveKubernetes', () => {
  const env = { KUBECONFIG: '/home/x/.kube/config', PATH: '/usr/bin' };

  it('never configured implicitly: no flag, no target (even with KUBECONFIG and a kubectl on PATH)', () => {
    expect(resolveKubernetes({ timeoutMs: 10_000 }, env)).toBeUndefined();
  });

  it('any one of --kubectl, --kube-context, --namespace configures it; kubectl from PATH by default', () => {
    expect(resolveKubernetes({ namespace: 'shop', timeoutMs: 10_000 }, env)).toEqual({
      kubectl: 'kubectl',
      namespace: 'shop',
      timeoutMs: 10_000,
      from: '--namespace',
    });
    expect(resolveKubernetes({ kubeContext: 'prod-eu', timeoutMs: 5_000 }, env)).toEqual({
      kubectl: 'kubectl',
      context: 'prod-eu',
      timeoutMs: 5_000,
      from: '--kube-context',
    });
    expect(
      resolveKubernetes(
        { kubectl: '/opt/k/kubectl', kubeContext: 'prod-eu', namespace: 'shop', timeoutMs: 1 },
        env,
      ),
    ).toEqual({
      kubectl: '/opt/k/kubectl',
      context: 'prod-eu',
      namespace: 'shop',
      timeoutMs: 1,
      from: '--kubectl',
    });
  });

  it('an empty value is a usage error naming the flag', () => {
    expect(() => resolveKubernetes({ namespace: ' ', timeoutMs: 1 }, env)).toThrowError(
      '--namespace: empty value',
    );
    expect(() => resolveKubernetes({ kubectl: '', timeoutMs: 1 }, env)).toThrowError(
      '--kubectl: empty value',
    );
  });
});
