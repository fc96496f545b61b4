import { TRANSCRIPT_SCHEMA } from '../transcript/types.js';
import { hostname, userInfo } from 'node:os';
import { UsageError } from '../errors.js';
import { defaultRunbookFor, loadRunbookById } from '../runbook/bundled.js';
import { parseSetFlags, resolveParameters } from '../runbook/params.js';
import type { ParameterValues, Runbook } from '../runbook/types.js';
import { openKubernetes, resolveKubernetes } from '../targets/kubernetes.js';
import { openPrometheus, resolvePrometheus } from '../targets/prometheus.js';
import { resolveDatabaseTarget, targetLabel } from '../targets/resolve.js';
import { Targets, type TargetSpecs } from '../targets/set.js';
import type { DatabaseTargetSpec } from '../targets/types.js';
import { transcriptPathFor } from '../transcript/paths.js';
import type { Transcript } from '../transcript/types.js';
import { poolctlVersion } from '../version.js';
import type { CommonOptions, Deps } from './common.js';

/** Everything a command run shares once its flags are known to be good and its transcript is open. */
export interface RunSession {
  spec: DatabaseTargetSpec;
  /** The database's label; `targets` opens it and the other systems on first use. */
  label: string;
  targets: Targets;
  /** The configured systems around the database, for headers, the transcript and the JSON. */
  systems: { kind: 'prometheus' | 'kubernetes'; label: string }[];
  runbook: Runbook;
  /** `--set` values as given, for the transcript and the commands poolctl suggests. */
  overrides: Record<string, string>;
  values: ParameterValues;
  transcript: Transcript;
  transcriptPath: string;
  incident: string;
  interactive: boolean;
  /**
   * The same systems opened anew, the database as a new session gets it (without poolctl's own
   * statement_timeout): what prevent's audit of the settings reads. The caller closes them.
   */
  auditTargets(): Targets;
  /** Colour on, as decided from the IO and --no-color; the views build their style from it. */
  color: boolean;
  /** Prints the start-up warning that `holdWarning` held back, if any (once). */
  releaseWarning(): void;
}

/**
 * Resolves the target, the runbook and its parameters — every usage error fails here, before a
 * connection or a file is opened — then opens the incident transcript and records the start.
 */
export async function openSession(
  command: string,
  opts: CommonOptions,
  deps: Deps,
  extraSets: string[] = [],
  /**
   * Hold back the warning that the transcript cannot be opened until `releaseWarning`: a run
   * whose kill will refuse for that very reason says it once, in the refusal.
   */
  holdWarning = false,
): Promise<RunSession> {
  const interactive = !opts.nonInteractive && deps.io.canPrompt();
  const spec = await resolveDatabaseTarget(opts.target, deps.env);
  const specs: TargetSpecs = {
    database: spec,
    prometheus: resolvePrometheus(opts.systems, deps.env),
    kubernetes: resolveKubernetes(opts.systems, deps.env),
  };
  const runbook = await loadRunbookById(opts.runbookId ?? defaultRunbookFor(spec.engine).id);
  if (runbook.engine !== spec.engine) {
    throw new UsageError(
      `--runbook ${runbook.id} is for ${runbook.engine}, the target is ${spec.engine}`,
    );
  }
  const overrides = parseSetFlags([...opts.sets, ...extraSets], runbook.parameters, runbook.id);
  const values = resolveParameters(runbook.parameters, overrides, runbook.id);
  const { path, incident } = transcriptPathFor({
    transcriptFlag: opts.transcriptPath,
    incident: opts.incident,
    env: deps.env,
    now: deps.now(),
  });
  // A transcript that cannot be written does not stop a diagnosis (its destructive steps refuse
  // to act unrecorded: see the intent in src/wizard/mitigation.ts); say so once, on stderr.
  const warn = (message: string) => deps.io.err.write(`poolctl: warning: ${message}\n`);
  let held: string | undefined;
  let opening = true;
  const transcript = deps.openTranscript(path, incident, {
    warn: (message) => (opening && holdWarning ? (held = message) : warn(message)),
  });
  deps.onTranscript(transcript);
  const label = targetLabel(spec);
  const systems = systemLabels(specs);
  const targetsWith = (sessionDefaults: boolean) =>
    new Targets(specs, {
      database: (database) =>
        deps.connect(sessionDefaults ? { ...database, sessionDefaults } : database),
      prometheus: async (prometheus) =>
        openPrometheus(prometheus, deps.http({ caFile: prometheus.caFile })),
      kubernetes: async (kubernetes) => openKubernetes(kubernetes, deps.processes()),
    });
  const targets = targetsWith(false);
  transcript.append({
    type: 'session.start',
    schema: TRANSCRIPT_SCHEMA,
    command,
    argv: deps.argv,
    runbook: runbook.id,
    targets: [label, ...systems.map((s) => s.label)],
    poolctl: poolctlVersion(),
    mode: interactive ? 'interactive' : 'non-interactive',
    parameters: overrides,
    operator: operator(),
  });
  opening = false; // from here on, a transcript that breaks is said when it breaks
  return {
    spec,
    label,
    targets,
    systems,
    runbook,
    overrides,
    values,
    transcript,
    transcriptPath: path,
    incident,
    interactive,
    auditTargets: () => targetsWith(true),
    color: deps.io.color && !opts.noColor,
    releaseWarning() {
      if (held !== undefined) warn(held);
      held = undefined;
    },
  };
}

/** How the systems around the database read in a header and a transcript: never a secret. */
function systemLabels(specs: TargetSpecs): RunSession['systems'] {
  const labels: RunSession['systems'] = [];
  if (specs.prometheus) labels.push({ kind: 'prometheus', label: specs.prometheus.url });
  if (specs.kubernetes) {
    const where = [
      specs.kubernetes.context && `context ${specs.kubernetes.context}`,
      specs.kubernetes.namespace && `namespace ${specs.kubernetes.namespace}`,
    ].filter(Boolean);
    labels.push({
      kind: 'kubernetes',
      label: `kubectl${where.length ? ` (${where.join(', ')})` : ''}`,
    });
  }
  return labels;
}

/** The JSON document's `targets`: the database (with its version once connected), then the rest. */
export function reportTargets(run: RunSession): ReportTarget[] {
  return [
    {
      kind: 'database',
      engine: run.spec.engine,
      label: run.label,
      version: run.targets.connectedDatabase?.info.version,
    },
    ...run.systems,
  ];
}

export interface ReportTarget {
  kind: 'database' | 'prometheus' | 'kubernetes';
  engine?: string;
  label: string;
  version?: string;
}

/** Who ran poolctl and where, for the postmortem's "run by". */
function operator(): { user: string; host: string } {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry for this uid (containers): keep $USER
  }
  return { user, host: hostname() };
}
