import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A kubectl stand-in on disk: an executable `kubectl` (a node script) that appends each call to a
 * log and answers from a scenario, as kubectl words it. Data-driven: a test changes the scenario
 * (a hang, a failure, other pods or logs) with `setScenario`, between calls if it likes.
 *
 * The stand-in reads two variables, so that poolctl run as a subprocess finds them too:
 * KUBECTL_STANDIN_LOG (one JSON line per call: `{ "args": [...], "kubeconfig": "…" }`) and
 * KUBECTL_STANDIN_SCENARIO (a JSON file of KubectlScenario). `env` holds both, and a PATH with the
 * stand-in first, so a plain `kubectl` resolves to it.
 */
export interface KubectlStandin {
  /** The directory holding `kubectl`: put it first on PATH. */
  dir: string;
  /** The executable's absolute path: what `--kubectl` is given. */
  bin: string;
  logFile: string;
  scenarioFile: string;
  /** KUBECTL_STANDIN_LOG, KUBECTL_STANDIN_SCENARIO and PATH (stand-in first). */
  env: Record<string, string>;
  /** Every call so far: its argv after the binary. */
  calls(): string[][];
  /** Every call so far with the KUBECONFIG it saw. */
  callsWithEnv(): { args: string[]; kubeconfig: string | null }[];
  setScenario(scenario: KubectlScenario): void;
  /** Forgets the calls recorded so far. */
  clearCalls(): void;
  remove(): void;
}

/** What the stand-in knows. Everything is optional; the defaults describe a healthy `api`. */
export interface KubectlScenario {
  /** Contexts that exist (default ['standin']); any other --context fails as kubectl does. */
  contexts?: string[];
  /** Deployment names that exist in every namespace (default ['api']). */
  deployments?: string[];
  /** Log lines for `logs` (default: a few pool-exhaustion lines among unrelated ones). */
  logs?: { pod: string; container?: string; line: string }[];
  /**
   * `rollout history` revisions (default 1..3, a day apart, the newest a day old), with their
   * change cause; `get replicasets` answers one ReplicaSet per revision, created that long ago.
   */
  revisions?: {
    revision: number;
    changeCause?: string;
    createdSecondsAgo?: number;
    /** When its ReplicaSet was created (RFC 3339); wins over createdSecondsAgo. */
    createdAt?: string;
    image?: string;
  }[];
  /** What `get pods -o json` describes (default: the three ready pods of the default logs). */
  pods?: StandinPod[];
  /**
   * What `get deployment/NAME -o json` describes for each deployment (default: 3 replicas, pool
   * 20 + 10 in the environment). A string pool value stands for a `valueFrom` (not readable).
   */
  deployment?: {
    replicas?: number;
    poolSize?: number | 'valueFrom';
    maxOverflow?: number | 'valueFrom';
    image?: string;
    /** spec.strategy.rollingUpdate.maxSurge (a count or "25%"); absent: no strategy written. */
    maxSurge?: number | string;
  };
  /** What `get …` prints, keyed by the resource argument (e.g. 'pods', 'deployment/api'). */
  get?: Record<string, unknown>;
  /**
   * A test application's control endpoint (test/helpers/pool-app-control.ts): `rollout restart`,
   * `rollout undo` and `scale` call it, and answer once it has done the change.
   */
  control?: string;
  /**
   * Answers that win over the defaults, the first whose `args` is a prefix of the command (the
   * args after the global flags; '*' matches any one arg).
   */
  answers?: KubectlAnswer[];
}

/** One pod of `get pods -o json`, in the few words a test needs. */
export interface StandinPod {
  name: string;
  /** Its one container is ready (default true). */
  ready?: boolean;
  restarts?: number;
  phase?: string;
  /** A waiting reason (CrashLoopBackOff), shown as its status by kubectl. */
  waiting?: string;
  startedSecondsAgo?: number;
  /** The last restart: why and when its container last ended. */
  lastRestart?: { reason: string; exitCode?: number; secondsAgo: number };
}

export interface KubectlAnswer {
  args: string[];
  stdout?: string;
  stderr?: string;
  exitCode?: number;
  /** Never exits (until killed): a kubectl stuck on an unreachable API server. */
  hang?: boolean;
  /** Waits this long before answering. */
  delayMs?: number;
}

/** The stand-in's program: plain JavaScript run by this very node (its absolute path). */
const PROGRAM = String.raw`
const fs = require('node:fs');
const argv = process.argv.slice(2);
if (process.env.KUBECTL_STANDIN_LOG) {
  fs.appendFileSync(
    process.env.KUBECTL_STANDIN_LOG,
    JSON.stringify({ args: argv, kubeconfig: process.env.KUBECONFIG ?? null }) + '\n',
  );
}
let scenario = {};
if (process.env.KUBECTL_STANDIN_SCENARIO && fs.existsSync(process.env.KUBECTL_STANDIN_SCENARIO)) {
  scenario = JSON.parse(fs.readFileSync(process.env.KUBECTL_STANDIN_SCENARIO, 'utf8'));
}

// Global flags, in both spellings kubectl takes; the rest is the command.
let context;
let namespace = 'default';
const args = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = (name) => (a.startsWith(name + '=') ? a.slice(name.length + 1) : a === name ? argv[++i] : undefined);
  let v;
  if ((v = value('--context')) !== undefined) context = v;
  else if ((v = value('--namespace')) !== undefined || (v = value('-n')) !== undefined) namespace = v;
  else if ((v = value('--kubeconfig')) !== undefined || (v = value('--request-timeout')) !== undefined) {}
  else args.push(a);
}

const out = (text) => process.stdout.write(text.endsWith('\n') || text === '' ? text : text + '\n');
const fail = (text, code = 1) => {
  process.stderr.write(text + '\n');
  process.exit(code);
};

const contexts = scenario.contexts ?? ['standin'];
if (context !== undefined && !contexts.includes(context)) {
  fail('Error in configuration: context was not found for specified context: ' + context);
}

const matches = (pattern) => pattern.length <= args.length && pattern.every((p, i) => p === '*' || p === args[i]);
const answer = (scenario.answers ?? []).find((a) => matches(a.args));
const respond = (a) => {
  if (a.hang) {
    setInterval(() => {}, 60_000);
    return;
  }
  if (a.stdout) out(a.stdout);
  if (a.stderr) process.stderr.write(a.stderr.endsWith('\n') ? a.stderr : a.stderr + '\n');
  process.exitCode = a.exitCode ?? 0;
};
if (answer) {
  if (answer.delayMs) setTimeout(() => respond(answer), answer.delayMs);
  else respond(answer);
  return;
}

const deployments = scenario.deployments ?? ['api'];
/** deployment/api, deploy/api, deployments/api, deployment.apps/api → api (or fail as kubectl). */
const deployment = (ref) => {
  const m = /^(?:deployment|deployments|deploy|deployment\.apps)\/(.+)$/.exec(ref ?? '');
  if (!m) fail('error: you must specify a deployment, e.g. deployment/api');
  if (!deployments.includes(m[1])) {
    fail('Error from server (NotFound): deployments.apps "' + m[1] + '" not found');
  }
  return m[1];
};
const flag = (name) => {
  const hit = args.find((a) => a.startsWith(name + '='));
  return hit === undefined ? undefined : hit.slice(name.length + 1);
};

// kubectl-shaped JSON for get pods / deployment / replicasets, from the scenario's few words.
const ago = (seconds) => new Date(Date.now() - seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
const labels = { app: 'api' };
const defaultRevisions = [{ revision: 1 }, { revision: 2 }, { revision: 3 }];
const revisionsOf = () => scenario.revisions ?? defaultRevisions;
const newest = () => Math.max(...revisionsOf().map((r) => r.revision));
const imageOf = (r) => r.image ?? 'registry.example/api:1.' + r.revision;
const podJson = (p) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: p.name, namespace, labels, creationTimestamp: ago(p.startedSecondsAgo ?? 86400) },
  spec: { containers: [{ name: 'api', image: 'registry.example/api:1.' + newest() }] },
  status: {
    phase: p.phase ?? 'Running',
    startTime: ago(p.startedSecondsAgo ?? 86400),
    containerStatuses: [
      {
        name: 'api',
        ready: p.ready ?? true,
        restartCount: p.restarts ?? 0,
        state: p.waiting ? { waiting: { reason: p.waiting } } : { running: { startedAt: ago(p.startedSecondsAgo ?? 86400) } },
        lastState: p.lastRestart
          ? { terminated: { reason: p.lastRestart.reason, exitCode: p.lastRestart.exitCode ?? 1, finishedAt: ago(p.lastRestart.secondsAgo) } }
          : {},
      },
    ],
  },
});
const defaultPods = [{ name: 'api-7d4b9c-x2x9k' }, { name: 'api-7d4b9c-q8m2p' }, { name: 'api-7d4b9c-z5c7d' }];
const envOf = (name, value) =>
  value === 'valueFrom'
    ? { name, valueFrom: { configMapKeyRef: { name: 'api-config', key: name } } }
    : { name, value: String(value) };
const deploymentJson = (name) => {
  const d = scenario.deployment ?? {};
  const replicas = d.replicas ?? 3;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, annotations: { 'deployment.kubernetes.io/revision': String(newest()) } },
    spec: {
      replicas,
      ...(d.maxSurge !== undefined
        ? { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: d.maxSurge } } }
        : {}),
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'api',
              image: d.image ?? 'registry.example/api:1.' + newest(),
              env: [
                { name: 'LOG_LEVEL', value: 'info' },
                envOf('DATABASE_POOL_SIZE', d.poolSize ?? 20),
                envOf('DATABASE_POOL_MAX_OVERFLOW', d.maxOverflow ?? 10),
              ],
            },
          ],
        },
      },
    },
    status: { replicas, readyReplicas: replicas, updatedReplicas: replicas, availableReplicas: replicas },
  };
};
const replicaSetJson = (name, r) => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: {
    name: name + '-' + (0x7d4b9c + r.revision).toString(16),
    namespace,
    labels,
    creationTimestamp: r.createdAt ?? ago(r.createdSecondsAgo ?? (newest() - r.revision + 1) * 86400),
    annotations: {
      'deployment.kubernetes.io/revision': String(r.revision),
      ...(r.changeCause ? { 'kubernetes.io/change-cause': r.changeCause } : {}),
    },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, controller: true }],
  },
  spec: { replicas: r.revision === newest() ? 3 : 0, template: { metadata: { labels }, spec: { containers: [{ name: 'api', image: imageOf(r) }] } } },
  status: { replicas: r.revision === newest() ? 3 : 0, readyReplicas: r.revision === newest() ? 3 : 0 },
});
const list = (items) => ({ apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } });
/** The generated answer to get KEY, or undefined (then an empty List, as before). */
const generated = (key) => {
  if (key === 'pods' || key === 'pod' || key === 'po') return list((scenario.pods ?? defaultPods).map(podJson));
  if (key === 'replicasets' || key === 'replicaset' || key === 'rs')
    return list(deployments.flatMap((name) => revisionsOf().map((r) => replicaSetJson(name, r))));
  if (/^(deployment|deployments|deploy|deployment\.apps)\//.test(key ?? '')) return deploymentJson(deployment(key));
  return undefined;
};
/** Drives the test application (scenario.control) as the cluster would; fails as kubectl would. */
const control = (change) => {
  if (!scenario.control) return;
  const script = 'fetch(process.argv[1], { method: "POST" }).then(async (r) => {' +
    ' process.stderr.write(r.ok ? "" : await r.text()); process.exitCode = r.ok ? 0 : 1; },' +
    ' (e) => { process.stderr.write(String(e)); process.exitCode = 1; })';
  const r = require('node:child_process').spawnSync(
    process.execPath, ['-e', script, scenario.control + '/' + change], { encoding: 'utf8' });
  if (r.status !== 0) fail('error: rollout failed: ' + String(r.stderr).trim());
};

const [verb, sub] = args;
if (verb === 'logs') {
  const lines = scenario.logs ?? [
    { pod: 'api-7d4b9c-x2x9k', line: 'INFO GET /health 200' },
    { pod: 'api-7d4b9c-x2x9k', line: 'ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00' },
    { pod: 'api-7d4b9c-q8m2p', line: 'INFO GET /orders 200' },
    { pod: 'api-7d4b9c-q8m2p', line: 'WARN connection pool exhausted, waiting for a connection' },
    { pod: 'api-7d4b9c-z5c7d', line: 'ERROR FATAL: remaining connection slots are reserved for non-replication superuser connections' },
  ];
  const tail = Number(flag('--tail') ?? -1);
  const byPod = new Map();
  for (const l of lines) byPod.set(l.pod, [...(byPod.get(l.pod) ?? []), l]);
  const shown = [...byPod.values()].flatMap((ls) => (tail >= 0 ? ls.slice(Math.max(0, ls.length - tail)) : ls));
  const prefix = args.some((a) => a === '--prefix' || a === '--prefix=true');
  out(shown.map((l) => (prefix ? '[pod/' + l.pod + '/' + (l.container ?? 'api') + '] ' : '') + l.line).join('\n'));
} else if (verb === 'rollout' && sub === 'history') {
  const name = deployment(args[2]);
  const revisions = scenario.revisions ?? [{ revision: 1 }, { revision: 2 }, { revision: 3 }];
  out('deployment.apps/' + name + ' \nREVISION  CHANGE-CAUSE\n' +
    revisions.map((r) => String(r.revision).padEnd(10) + (r.changeCause ?? '<none>')).join('\n') + '\n');
} else if (verb === 'rollout' && sub === 'restart') {
  const name = deployment(args[2]);
  control('restart');
  out('deployment.apps/' + name + ' restarted');
} else if (verb === 'rollout' && sub === 'undo') {
  const name = deployment(args[2]);
  control('undo');
  out('deployment.apps/' + name + ' rolled back');
} else if (verb === 'rollout' && sub === 'status') {
  const name = deployment(args[2]);
  out('Waiting for deployment "' + name + '" rollout to finish: 2 of 3 updated replicas are available...\n' +
    'deployment "' + name + '" successfully rolled out');
} else if (verb === 'scale') {
  const name = deployment(args[1]);
  if (flag('--replicas') === undefined) fail('error: required flag(s) "replicas" not set');
  control('scale?replicas=' + encodeURIComponent(flag('--replicas')));
  out('deployment.apps/' + name + ' scaled');
} else if (verb === 'set' && sub === 'env') {
  out('deployment.apps/' + deployment(args[2]) + ' env updated');
} else if (verb === 'get') {
  const key = args[1];
  const known = scenario.get ?? {};
  if (key in known) out(JSON.stringify(known[key], null, 4));
  else out(JSON.stringify(generated(key) ?? list([]), null, 4));
} else if (verb === 'config' && sub === 'current-context') {
  out(context ?? contexts[0]);
} else {
  fail('error: unknown command "' + (verb ?? '') + '" for "kubectl"');
}
`;

/** Writes the stand-in into a fresh temporary directory. Call `remove()` in `afterAll`. */
export function writeKubectlStandin(scenario: KubectlScenario = {}): KubectlStandin {
  const dir = mkdtempSync(path.join(tmpdir(), 'poolctl-kubectl-'));
  const bin = path.join(dir, 'kubectl');
  const logFile = path.join(dir, 'calls.jsonl');
  const scenarioFile = path.join(dir, 'scenario.json');
  // The script's body runs inside a function so that it may `return` early.
  writeFileSync(bin, `#!${process.execPath}\n(() => {${PROGRAM}})();\n`);
  chmodSync(bin, 0o755);
  const setScenario = (s: KubectlScenario): void => writeFileSync(scenarioFile, JSON.stringify(s));
  setScenario(scenario);
  const callsWithEnv = (): { args: string[]; kubeconfig: string | null }[] =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { args: string[]; kubeconfig: string | null })
      : [];
  return {
    dir,
    bin,
    logFile,
    scenarioFile,
    env: {
      KUBECTL_STANDIN_LOG: logFile,
      KUBECTL_STANDIN_SCENARIO: scenarioFile,
      PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}`,
    },
    calls: () => callsWithEnv().map((c) => c.args),
    callsWithEnv,
    setScenario,
    clearCalls: () => rmSync(logFile, { force: true }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
