/**
 * What kubectl's read commands say, parsed in TypeScript (never `jq` or a shell pipe): the pods
 * and their readiness, the Deployment's replicas and pool settings, the ReplicaSets behind its
 * revisions, `rollout history`, and the application's log lines that speak of a pool running out.
 * Pure functions over kubectl's stdout; the kubectl read executor turns them into step rows, and
 * the capacity guard and prevent's capacity audit read `deploymentOf`.
 */
import { sanitizeInline } from '../io/sanitize.js';

/** The environment variables that set the application's pool (RUNBOOK-006 Mitigation Option 2). */
export const POOL_SIZE_ENV = 'DATABASE_POOL_SIZE';
export const MAX_OVERFLOW_ENV = 'DATABASE_POOL_MAX_OVERFLOW';
/** The annotation the Deployment controller puts on each ReplicaSet (and the Deployment). */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause';

type Json = Record<string, unknown>;

function obj(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Json)
    : {};
}
function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
function str(value: unknown): string | undefined {
  return typeof value === 'string' ? sanitizeInline(value) : undefined;
}
function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
/** A whole number written as text ("20"), as env values and annotations are; else undefined. */
function intText(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\s*\d+\s*$/.test(value)) return undefined;
  return Number(value);
}

/** kubectl's JSON, or a one-line error naming the command. */
export function parseKubectlJson(stdout: string, what: string): Json {
  try {
    return obj(JSON.parse(stdout));
  } catch {
    const first = sanitizeInline(stdout.trim().split('\n')[0] ?? '').slice(0, 80);
    throw new Error(
      `kubectl ${what}: expected JSON (-o json), got ${first ? `"${first}"` : 'nothing'}`,
    );
  }
}

/** The objects of a List (`get pods -o json`), or the one object (`get deployment/api -o json`). */
function itemsOf(doc: Json): Json[] {
  return doc.kind === 'List' || Array.isArray(doc.items) ? arr(doc.items).map(obj) : [doc];
}

/** Seconds between an RFC 3339 time and now; undefined when the time is absent or unreadable. */
function secondsSince(time: unknown, nowMs: number): number | undefined {
  const ms = typeof time === 'string' ? Date.parse(time) : NaN;
  return Number.isFinite(ms) ? Math.max(0, Math.round((nowMs - ms) / 1000)) : undefined;
}

/** kubectl's age: 45s, 12m, 3h, 5d (the largest unit, as `kubectl get` prints it). */
export function kubeAge(seconds: number | undefined): string {
  if (seconds === undefined) return 'unknown';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export interface PodRow {
  [column: string]: unknown;
  pod: string;
  /** kubectl's READY column: ready containers / containers. */
  ready: string;
  /** Containers not ready (0 for a ready pod); what a finding judges. */
  unready: number;
  /** The pod's restarts over all its containers. */
  restarts: number;
  /** Phase, or why it is not running: Running, Pending, CrashLoopBackOff, Terminating. */
  status: string;
  age: string;
  /** Seconds since the last container restart, null when none restarted (or unknown). */
  last_restart_s: number | null;
  /** "Error (exit 1) 3m ago", "OOMKilled 40s ago", or ''. */
  last_restart: string;
}

/** `kubectl get pods -o json`: one row per pod, as `kubectl get pods` shows them. */
export function podsOf(stdout: string, nowMs: number): PodRow[] {
  return itemsOf(parseKubectlJson(stdout, 'get pods')).map((pod) => {
    const meta = obj(pod.metadata);
    const status = obj(pod.status);
    const containers = arr(obj(pod.spec).containers).length;
    const statuses = arr(status.containerStatuses).map(obj);
    const total = Math.max(containers, statuses.length);
    const readyCount = statuses.filter((c) => c.ready === true).length;
    const restarts = statuses.reduce((sum, c) => sum + (num(c.restartCount) ?? 0), 0);
    // The most recent restart over the containers: its reason and when it ended.
    let lastRestart: { at: number; text: string } | undefined;
    for (const c of statuses) {
      const terminated = obj(obj(c.lastState).terminated);
      const ago = secondsSince(terminated.finishedAt, nowMs);
      if (ago === undefined || (num(c.restartCount) ?? 0) === 0) continue;
      if (lastRestart && lastRestart.at <= ago) continue;
      const exit = num(terminated.exitCode);
      const reason = str(terminated.reason) ?? 'restarted';
      lastRestart = {
        at: ago,
        text: `${reason}${exit !== undefined ? ` (exit ${exit})` : ''} ${kubeAge(ago)} ago`,
      };
    }
    // What `kubectl get pods` shows in STATUS: a waiting reason (CrashLoopBackOff) wins over the phase.
    const waiting = statuses
      .map((c) => str(obj(obj(c.state).waiting).reason))
      .find((r) => r !== undefined);
    const shownStatus =
      meta.deletionTimestamp !== undefined
        ? 'Terminating'
        : (waiting ?? str(status.reason) ?? str(status.phase) ?? 'Unknown');
    return {
      pod: str(meta.name) ?? 'unknown',
      ready: `${readyCount}/${total}`,
      unready: total - readyCount,
      restarts,
      status: shownStatus,
      age: kubeAge(secondsSince(status.startTime ?? meta.creationTimestamp, nowMs)),
      last_restart_s: lastRestart?.at ?? null,
      last_restart: lastRestart?.text ?? '',
    };
  });
}

export interface DeploymentFacts {
  name: string;
  /** spec.replicas: what the Deployment asks for (kubectl's default of 1 when absent). */
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  /** The container whose environment the pool settings were read from (see `appContainer`). */
  container: string | null;
  /** The pool size per replica from the app container's environment; null when not set as a value. */
  poolSize: number | null;
  maxOverflow: number | null;
  /** Why poolSize / maxOverflow is null, in words an operator can act on. */
  why: { poolSize?: string; maxOverflow?: string };
  /**
   * The extra pods a rolling update runs at once: spec.strategy.rollingUpdate.maxSurge as
   * written (a count, or "25%"); 0 for the Recreate strategy; null when the spec does not say.
   */
  maxSurge: number | string | null;
  /** The Deployment's current revision (its annotation), or null. */
  revision: number | null;
  images: string[];
}

/** The annotation that names a pod's main container (kubectl logs/exec/set default to it). */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/**
 * The container that runs the application's pool. A pod holds one application and its sidecars
 * (a proxy, a log shipper); `kubectl set env deployment/api DATABASE_POOL_SIZE=…` without `-c`
 * writes the variable into every container, sidecars included, so the pool settings must be read
 * from one container, never summed over all. In order: the container the pod template names as
 * its default (`kubectl.kubernetes.io/default-container`), the container named like the
 * Deployment (`kubectl create deployment api` names it `api`), the first container that sets
 * DATABASE_POOL_SIZE, else the first container (kubectl's own default).
 */
export function appContainer(deployment: Json): Json | undefined {
  const template = obj(obj(deployment.spec).template);
  const containers = arr(obj(template.spec).containers).map(obj);
  const named = (name: unknown) =>
    typeof name === 'string' ? containers.find((c) => c.name === name) : undefined;
  const setsPool = (c: Json) => arr(c.env).some((e) => obj(e).name === POOL_SIZE_ENV);
  return (
    named(obj(obj(template.metadata).annotations)[DEFAULT_CONTAINER_ANNOTATION]) ??
    named(obj(deployment.metadata).name) ??
    containers.find(setsPool) ??
    containers[0]
  );
}

/**
 * `kubectl get deployment/NAME -o json`: the replica count, the rollout's surge, and the pool
 * settings from the app container's environment (`appContainer`; a sidecar's variables are not
 * added in). A value from a ConfigMap or Secret (`valueFrom`) is not in the Deployment and reads
 * as null (not measured), never as 0.
 */
export function deploymentOf(stdout: string): DeploymentFacts {
  const doc = parseKubectlJson(stdout, 'get deployment');
  const [deployment] = itemsOf(doc);
  if (!deployment || (deployment.kind !== undefined && deployment.kind !== 'Deployment')) {
    throw new Error(
      `kubectl get deployment: expected a Deployment, got ${String(deployment?.kind ?? 'nothing')}`,
    );
  }
  const spec = obj(deployment.spec);
  const status = obj(deployment.status);
  const containers = arr(obj(obj(spec.template).spec).containers).map(obj);
  const app = appContainer(deployment);
  const appName = str(app?.name) ?? null;
  const where = appName ? `container ${appName}` : 'the pod template';
  const why: DeploymentFacts['why'] = {};
  const read = (name: string, key: keyof DeploymentFacts['why']): number | null => {
    const entry = arr(app?.env)
      .map(obj)
      .find((e) => e.name === name);
    if (!entry) {
      why[key] = `${name} is not in the environment of ${where}`;
      return null;
    }
    if (entry.value === undefined) {
      why[key] =
        `${name} comes from valueFrom (a ConfigMap or Secret) in ${where}, not readable here`;
      return null;
    }
    const value = intText(entry.value);
    if (value === undefined) {
      why[key] =
        `${name} is ${JSON.stringify(str(entry.value) ?? entry.value)} in ${where}, not a whole number`;
      return null;
    }
    return value;
  };
  const poolSize = read(POOL_SIZE_ENV, 'poolSize');
  const maxOverflow = read(MAX_OVERFLOW_ENV, 'maxOverflow');
  const strategy = obj(spec.strategy);
  const surge = obj(strategy.rollingUpdate).maxSurge;
  const maxSurge =
    strategy.type === 'Recreate'
      ? 0
      : (num(surge) ?? (typeof surge === 'string' && /^\d+%$/.test(surge) ? surge : null));
  return {
    name: str(obj(deployment.metadata).name) ?? 'unknown',
    replicas: num(spec.replicas) ?? 1,
    readyReplicas: num(status.readyReplicas) ?? 0,
    updatedReplicas: num(status.updatedReplicas) ?? 0,
    container: appName,
    poolSize,
    maxOverflow,
    why,
    maxSurge,
    revision: intText(obj(obj(deployment.metadata).annotations)[REVISION_ANNOTATION]) ?? null,
    images: containers.map((c) => str(c.image) ?? '').filter(Boolean),
  };
}

/**
 * The Deployment as one row; `connections_max` = replicas × (pool_size + max_overflow) as it runs,
 * without a rollout's surge (the capacity formula adds it), null when either pool number is
 * unknown: an unread max_overflow is not 0.
 */
export function deploymentRow(facts: DeploymentFacts): Record<string, unknown> {
  const perReplica =
    facts.poolSize !== null && facts.maxOverflow !== null
      ? facts.poolSize + facts.maxOverflow
      : null;
  return {
    deployment: facts.name,
    replicas: facts.replicas,
    ready: `${facts.readyReplicas}/${facts.replicas}`,
    updated: facts.updatedReplicas,
    pool_size: facts.poolSize,
    max_overflow: facts.maxOverflow,
    connections_max: perReplica !== null ? facts.replicas * perReplica : null,
    container: facts.container,
    max_surge: facts.maxSurge,
    /** Why a pool setting is null ('' when both were read): for prevent's capacity audit. */
    unreadable: Object.values(facts.why).join('; '),
    revision: facts.revision,
    image: facts.images.join(', '),
  };
}

export interface ReplicaSetRow {
  [column: string]: unknown;
  revision: number;
  replicaset: string;
  /** creationTimestamp as kubectl gave it (UTC, RFC 3339). */
  created: string;
  /** Unix seconds of `created`, for setting the rollout against the pool's trend. */
  created_at: number | null;
  age: string;
  replicas: number;
  ready: number;
  image: string;
  change_cause: string;
}

/**
 * `kubectl get replicasets -l SELECTOR -o json`: one row per revision of the Deployment (the
 * ReplicaSets it owns; others that share the labels are left out), newest revision first.
 */
export function replicaSetsOf(
  stdout: string,
  deployment: string | undefined,
  nowMs: number,
): ReplicaSetRow[] {
  const rows: ReplicaSetRow[] = [];
  for (const rs of itemsOf(parseKubectlJson(stdout, 'get replicasets'))) {
    const meta = obj(rs.metadata);
    const owners = arr(meta.ownerReferences).map(obj);
    if (
      deployment !== undefined &&
      owners.length > 0 &&
      !owners.some((o) => o.kind === 'Deployment' && o.name === deployment)
    )
      continue;
    const annotations = obj(meta.annotations);
    const revision = intText(annotations[REVISION_ANNOTATION]);
    if (revision === undefined) continue;
    const createdMs =
      typeof meta.creationTimestamp === 'string' ? Date.parse(meta.creationTimestamp) : NaN;
    const containers = arr(obj(obj(obj(rs.spec).template).spec).containers).map(obj);
    rows.push({
      revision,
      replicaset: str(meta.name) ?? 'unknown',
      created: str(meta.creationTimestamp) ?? '',
      created_at: Number.isFinite(createdMs) ? Math.round(createdMs / 1000) : null,
      age: kubeAge(secondsSince(meta.creationTimestamp, nowMs)),
      replicas: num(obj(rs.status).replicas) ?? 0,
      ready: num(obj(rs.status).readyReplicas) ?? 0,
      image: containers
        .map((c) => str(c.image) ?? '')
        .filter(Boolean)
        .join(', '),
      change_cause: str(annotations[CHANGE_CAUSE_ANNOTATION]) ?? '',
    });
  }
  return rows.sort((a, b) => b.revision - a.revision);
}

/**
 * `kubectl rollout history deployment/NAME`: its revisions and change causes, newest first.
 *
 *     deployment.apps/api
 *     REVISION  CHANGE-CAUSE
 *     1         <none>
 *     2         kubectl set image deployment/api api=api:1.4
 */
export function rolloutHistoryOf(stdout: string): { revision: number; change_cause: string }[] {
  const rows: { revision: number; change_cause: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const cause = sanitizeInline(m[2]!.trim());
    rows.push({ revision: Number(m[1]), change_cause: cause === '<none>' ? '' : cause });
  }
  if (rows.length === 0 && !/REVISION/.test(stdout)) {
    const first = sanitizeInline(stdout.trim().split('\n')[0] ?? '').slice(0, 80);
    throw new Error(
      `kubectl rollout history: no revisions in its output${first ? ` ("${first}")` : ''}`,
    );
  }
  return rows.sort((a, b) => b.revision - a.revision);
}

export interface LogPodRow {
  [column: string]: unknown;
  pod: string;
  /** Lines that matched any pattern (a line counts once however many it matches). */
  matches: number;
  /** "QueuePool 2, timeout 2": each pattern's count, most first (ties in the patterns' order). */
  by_pattern: string;
  /** The matching lines, oldest first, as the container printed them (sanitized). */
  lines: string[];
}

/** `kubectl logs --prefix` starts each line with `[pod/NAME/CONTAINER] `. */
const PREFIX = /^\[([^\]]+)\] ?(.*)$/;

/**
 * The application's log lines that match the patterns, counted per pod: one row per pod that
 * logged anything (a pod with no match has 0, so the quiet replicas show beside the loud one),
 * most matches first. Unrelated lines are left out. `tail` keeps a pod's last N matching lines
 * (its count is of all of them).
 */
export function logMatchesOf(
  stdout: string,
  patterns: Record<string, string>,
  tail?: number,
): LogPodRow[] {
  const compiled = Object.entries(patterns).map(
    ([name, re]) => [name, new RegExp(re, 'i')] as const,
  );
  const order = Object.keys(patterns);
  const pods = new Map<string, { lines: string[]; counts: Map<string, number>; matches: number }>();
  for (const raw of stdout.split('\n')) {
    if (raw.trim() === '') continue;
    const prefixed = PREFIX.exec(raw);
    // [pod/api-7d4b9c-x2x9k/api] → api-7d4b9c-x2x9k; without --prefix the pod is unknown.
    const source = prefixed ? prefixed[1]!.split('/') : undefined;
    const pod = source
      ? sanitizeInline(source[0] === 'pod' ? (source[1] ?? '') : source[0]!)
      : '(unknown)';
    const text = sanitizeInline(prefixed ? prefixed[2]! : raw);
    const entry = pods.get(pod) ?? {
      lines: [] as string[],
      counts: new Map<string, number>(),
      matches: 0,
    };
    pods.set(pod, entry);
    const hits = compiled.filter(([, re]) => re.test(text)).map(([name]) => name);
    if (hits.length === 0) continue;
    entry.matches++;
    entry.lines.push(text);
    for (const name of hits) entry.counts.set(name, (entry.counts.get(name) ?? 0) + 1);
  }
  return [...pods.entries()]
    .map(([pod, e]) => ({
      pod,
      matches: e.matches,
      by_pattern: [...e.counts.entries()]
        .sort((a, b) => b[1] - a[1] || order.indexOf(a[0]) - order.indexOf(b[0]))
        .map(([name, n]) => `${name} ${n}`)
        .join(', '),
      lines: tail !== undefined ? e.lines.slice(-tail) : e.lines,
    }))
    .sort((a, b) => b.matches - a.matches || a.pod.localeCompare(b.pod));
}
