// The kubectl target: runs kubectl through the process seam, with the context and namespace on
// every call, an argument array (no shell) and a timeout. A failing kubectl fails its step alone
// (KubectlError, one line); a kubectl that is missing or hangs fails once and then makes the
// target unusable, so the remaining cluster steps are skipped at once with the first cause — a
// hanging kubectl costs one timeout per run, not one per step.
import { UsageError } from '../errors.js';
import { ProcessError, type ProcessRunner } from '../io/process.js';
import { sanitizeForDisplay, sanitizeInline } from '../io/sanitize.js';
import { formatDuration } from '../runbook/params.js';

/**
 * A klog line (`E1203 17:35:55.944741    8190 memcache.go:265] …`): kubectl's log noise that
 * comes before its own message when the API server is unreachable.
 */
const KLOG_LINE = /^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ \S+:\d+\]/;

export interface KubernetesSpec {
  /** A path, or 'kubectl' to find it on PATH. */
  kubectl: string;
  /** --kube-context; kubectl's current context when absent. */
  context?: string;
  /** --namespace; the context's namespace when absent. */
  namespace?: string;
  /** Each call, unless the caller gives its own (e.g. a `rollout status` that waits longer). */
  timeoutMs: number;
  /** The flag that configured the target: '--kubectl' | '--kube-context' | '--namespace'. */
  from: string;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
}

export interface KubernetesTarget {
  /** e.g. "kubectl (context prod-eu, namespace shop)". */
  readonly label: string;
  /** The full argv poolctl will run for these args (binary, --context, --namespace first): what a preview shows. */
  argv(args: string[]): string[];
  /** Resolves on exit 0; otherwise throws KubectlError. */
  run(args: string[], opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<KubectlResult>;
}

export type KubectlErrorReason = 'missing' | 'timeout' | 'exit' | 'unusable';

/**
 * - 'missing': the binary cannot be started ("kubectl not found: … pass --kubectl PATH");
 * - 'exit': a non-zero exit; the message is kubectl's own (its first stderr line past klog noise);
 * - 'timeout': the call did not finish in time (kubectl was killed);
 * - 'unusable': an earlier call was 'missing' or 'timeout'; nothing was run this time.
 * An abort (the operator's Ctrl-C through `signal`) is not a KubectlError: the ProcessError with
 * reason 'aborted' passes through, for the interrupt handling to deal with.
 */
export class KubectlError extends Error {
  override name = 'KubectlError';
  constructor(
    readonly reason: KubectlErrorReason,
    message: string,
    /** For 'exit': kubectl's exit code and its whole stderr (sanitized, lines kept). */
    readonly exit?: { code: number; stderr: string },
  ) {
    super(message);
  }
}

export function openKubernetes(spec: KubernetesSpec, runner: ProcessRunner): KubernetesTarget {
  const globals = [
    ...(spec.context !== undefined ? [`--context=${spec.context}`] : []),
    ...(spec.namespace !== undefined ? [`--namespace=${spec.namespace}`] : []),
  ];
  const argv = (args: string[]): string[] => [spec.kubectl, ...globals, ...args];
  /** Why every later call is skipped, once a call was 'missing' or 'timeout'. */
  let unusable: string | undefined;

  return {
    label: kubernetesLabel(spec),
    argv,

    async run(args, opts = {}) {
      if (unusable) throw new KubectlError('unusable', `skipped: ${unusable}`);
      const [file, ...rest] = argv(args);
      const timeoutMs = opts.timeoutMs ?? spec.timeoutMs;
      let result;
      try {
        result = await runner.run(file!, rest, { timeoutMs, signal: opts.signal });
      } catch (error) {
        if (!(error instanceof ProcessError)) throw error;
        if (error.reason === 'timeout') {
          unusable = `kubectl timed out after ${seconds(timeoutMs)} earlier in this run`;
          throw new KubectlError(
            'timeout',
            `kubectl ${args.join(' ')} timed out after ${seconds(timeoutMs)} (stopped)`,
          );
        }
        if (error.reason === 'missing') {
          unusable = `kubectl not found (${spec.kubectl}) earlier in this run`;
          const where = spec.kubectl.includes('/') ? 'no such file' : 'not on PATH';
          throw new KubectlError(
            'missing',
            `kubectl not found: ${spec.kubectl} (${where}): pass --kubectl PATH`,
          );
        }
        if (error.reason === 'failed-to-start') {
          unusable = `kubectl could not be started (${spec.kubectl}) earlier in this run`;
          throw new KubectlError(
            'missing',
            `kubectl could not be started: ${error.message}: pass --kubectl PATH`,
          );
        }
        throw error;
      }
      if (result.exitCode !== 0) {
        const stderr = sanitizeForDisplay(result.stderr.trim());
        throw new KubectlError(
          'exit',
          kubectlMessage(stderr) || `kubectl ${args[0] ?? ''} exited with ${result.exitCode}`,
          { code: result.exitCode, stderr },
        );
      }
      return { stdout: result.stdout, stderr: result.stderr };
    },
  };
}

/** kubectl's own message: the first stderr line that is not klog noise, else the first line. */
function kubectlMessage(stderr: string): string {
  const lines = stderr.split('\n').map((line) => sanitizeInline(line).trim());
  return lines.find((line) => line !== '' && !KLOG_LINE.test(line)) ?? lines[0] ?? '';
}

/** "kubectl (context prod-eu, namespace shop)"; the binary named when it is not plain kubectl. */
export function kubernetesLabel(spec: KubernetesSpec): string {
  const context = spec.context !== undefined ? `context ${spec.context}` : 'current context';
  const namespace =
    spec.namespace !== undefined ? `namespace ${spec.namespace}` : "the context's namespace";
  return `${spec.kubectl} (${context}, ${namespace})`;
}

/**
 * The kubectl target, configured only when asked for: --kubectl PATH, --kube-context NAME or
 * --namespace NS. A kubectl on PATH is never used implicitly (it may point at production).
 * KUBECONFIG passes through the environment to kubectl untouched.
 */
export function resolveKubernetes(
  flags: { kubectl?: string; kubeContext?: string; namespace?: string; timeoutMs: number },
  _env: NodeJS.ProcessEnv,
): KubernetesSpec | undefined {
  const given: [flag: string, value: string | undefined][] = [
    ['--kubectl', flags.kubectl],
    ['--kube-context', flags.kubeContext],
    ['--namespace', flags.namespace],
  ];
  for (const [flag, value] of given) {
    if (value !== undefined && value.trim() === '') throw new UsageError(`${flag}: empty value`);
  }
  const from = given.find(([, value]) => value !== undefined)?.[0];
  if (from === undefined) return undefined;
  return {
    kubectl: flags.kubectl ?? 'kubectl',
    ...(flags.kubeContext !== undefined && { context: flags.kubeContext }),
    ...(flags.namespace !== undefined && { namespace: flags.namespace }),
    timeoutMs: flags.timeoutMs,
    from,
  };
}

function seconds(ms: number): string {
  return formatDuration(ms / 1000);
}
