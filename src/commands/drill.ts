import { loadDrillEngine } from '../drill/engines.js';
import { isLoopbackHost } from '../drill/loopback.js';
import { openSessions, releaseAll, type DrillPlan } from '../drill/open.js';
import { describeCounts, ExternalReporter, plural } from '../drill/report.js';
import { takeOverStopSignals } from '../drill/signals.js';
import {
  DRILL_KINDS,
  type DrillEngineLoader,
  type DrillKind,
  type DrillSession,
} from '../drill/types.js';
import type { EngineFlag } from '../engines.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatDuration, parseDuration, parseInteger } from '../runbook/params.js';
import { resolveDatabaseTarget, targetLabel } from '../targets/resolve.js';
import type { TargetFlags } from '../targets/resolve.js';
import { poolctlVersion } from '../version.js';
import { parseCommonOptions, type CommonFlags, type Deps, type Outcome } from './common.js';

export interface DrillFlags extends Pick<CommonFlags, EngineFlag | 'connectTimeout' | 'output'> {
  idle?: string;
  idleInTx?: string;
  long?: string;
  hold?: string;
  allowRemote?: boolean;
  appNames?: string;
  batchSize?: string;
}

export interface DrillOptions {
  target: TargetFlags;
  output: 'human' | 'json';
  counts: Record<DrillKind, number>;
  /** Seconds to hold before releasing; undefined = until Ctrl-C. */
  holdSeconds?: number;
  allowRemote: boolean;
  /** application_name per kind. */
  applications: Record<DrillKind, string>;
  batchSize: number;
}

/** The seed's services, one per kind: the api leaks idle connections, a worker forgets to commit, a batch job runs long. */
export const DEFAULT_APPLICATIONS: Record<DrillKind, string> = {
  idle: 'api',
  idleInTx: 'worker',
  long: 'batch',
};
/** More sessions than any server's max_connections allows (MySQL's ceiling is 100,000). */
const MAX_SESSIONS = 100_000;
/** setTimeout's ceiling, about 24.8 days. */
const MAX_HOLD_S = 2_147_483;
/** A long session's statement without --hold: a day, cancelled at release anyway. */
const DEFAULT_LONG_S = 86_400;

export function parseDrillOptions(flags: DrillFlags): DrillOptions {
  const { target, output } = parseCommonOptions(flags);
  const count = (value: string | undefined, flag: string) =>
    value === undefined ? 0 : parseInteger(value, `${flag} ${value}`);
  const counts = {
    idle: count(flags.idle, '--idle'),
    idleInTx: count(flags.idleInTx, '--idle-in-tx'),
    long: count(flags.long, '--long'),
  };
  const total = counts.idle + counts.idleInTx + counts.long;
  if (total === 0)
    throw new UsageError('nothing to hold: give --idle N, --idle-in-tx N or --long N');
  if (total > MAX_SESSIONS) throw new UsageError(`${total} sessions: at most ${MAX_SESSIONS}`);
  let holdSeconds: number | undefined;
  if (flags.hold !== undefined) {
    holdSeconds = parseDuration(flags.hold, `--hold ${flags.hold}`);
    if (holdSeconds <= 0 || holdSeconds > MAX_HOLD_S) {
      throw new UsageError(`--hold ${flags.hold}: expected more than 0s and at most 24d`);
    }
  }
  const batchSize = parseInteger(flags.batchSize ?? '50', `--batch-size ${flags.batchSize}`);
  if (batchSize < 1 || batchSize > 1000) {
    throw new UsageError(`--batch-size ${batchSize}: expected 1 to 1000 connects at a time`);
  }
  return {
    target,
    output,
    counts,
    holdSeconds,
    allowRemote: Boolean(flags.allowRemote),
    applications: parseAppNames(flags.appNames),
    batchSize,
  };
}

/** `--app-names api,worker,batch` names the idle, idle-in-tx and long sessions; one name names all. */
function parseAppNames(value: string | undefined): Record<DrillKind, string> {
  if (value === undefined) return { ...DEFAULT_APPLICATIONS };
  const names = value.split(',').map((n) => n.trim());
  const usage = `--app-names ${value}: expected one name for every session, or three (idle,idle-in-tx,long)`;
  if (names.length !== 1 && names.length !== 3) throw new UsageError(usage);
  for (const name of names) {
    // PostgreSQL keeps 63 bytes of printable ASCII in application_name and mangles the rest.
    if (!/^[\x20-\x7e]{1,63}$/.test(name)) {
      throw new UsageError(`--app-names: "${name}" is not 1–63 printable ASCII characters`);
    }
  }
  const [idle, idleInTx = idle, long = idle] = names as [string, ...string[]];
  return { idle, idleInTx, long };
}

export interface DrillDeps extends Pick<Deps, 'io' | 'env'> {
  /** The engine's drill module (default: by the target's engine). */
  drillEngine?: DrillEngineLoader;
  /** Calls onStop on Ctrl-C/SIGTERM until the returned function is called (default: the process). */
  stopSignals?: (onStop: () => void) => () => void;
}

/**
 * Opens and holds a real exhaustion scenario (idle, idle-in-transaction and long sessions) until
 * Ctrl-C or --hold, then releases every session cleanly. Ctrl-C is the normal end: exit 0. No
 * transcript: a drill is not an incident; the diagnose run against it records one.
 */
export async function runDrill(opts: DrillOptions, deps: DrillDeps): Promise<Outcome> {
  const { io } = deps;
  const spec = await resolveDatabaseTarget(opts.target, deps.env);
  const label = targetLabel(spec);
  if (!opts.allowRemote && !isLoopbackHost(spec.host)) {
    throw new UsageError(
      `drill refuses ${spec.host} (from ${spec.from}): it exhausts the server it is pointed at, so it ` +
        'runs only against loopback (127.0.0.0/8, ::1, localhost) or a unix socket; --allow-remote if you mean it',
    );
  }
  const note = (line: string) => io.err.write(`poolctl drill: ${line}\n`);
  const result = (line: string) => (opts.output === 'json' ? io.err : io.out).write(`${line}\n`);
  const engine = await (deps.drillEngine ?? loadDrillEngine)(spec);

  let stop: () => void = () => {};
  let stopRequested = false;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const restoreSignals = (deps.stopSignals ?? takeOverStopSignals)(() => {
    stopRequested = true;
    if (io.isStderrTTY) io.err.write('\n'); // past the ^C the terminal echoed
    note('releasing the sessions… (Ctrl-C again to stop at once)');
    stop();
  });

  const held = new Set<DrillSession>();
  let holding = false;
  const reporter = new ExternalReporter(note, () => held.size);
  const total = DRILL_KINDS.reduce((n, k) => n + opts.counts[k], 0);
  const plan: DrillPlan = {
    counts: opts.counts,
    applications: opts.applications,
    batchSize: opts.batchSize,
    longSeconds: opts.holdSeconds ? Math.ceil(opts.holdSeconds) + 10 : DEFAULT_LONG_S,
  };
  try {
    note(
      `opening ${plural(total, 'session')} on ${label}, ${opts.batchSize} at a time: ` +
        describeCounts(opts.counts, opts.applications),
    );
    const opened = await openSessions(engine, plan, {
      held,
      label,
      stopRequested: () => stopRequested,
      onExternal: (event) => {
        if (event.what === 'ended' && !held.delete(event.session)) return;
        reporter.add(event);
        if (holding && held.size === 0) {
          reporter.flush();
          note('every session ended from outside: nothing left to hold');
          stop();
        }
      },
      progress: (n, of) => {
        if (io.isStderrTTY) io.err.write(`\rpoolctl drill: opened ${n}/${of}\x1b[K`);
        if (io.isStderrTTY && n === of) io.err.write('\n');
      },
    });
    if (io.isStderrTTY && held.size < total) io.err.write('\n');
    if (opened.stopped) {
      await releaseAll([...held], opts.batchSize);
      result(`Stopped while opening: released ${plural(held.size, 'session')}.`);
      return { exitCode: ExitCode.ok, status: 'released' };
    }
    const counts = countByKind(held);
    const heldAtStart = held.size;
    if (opened.outOfSlots) {
      note(
        `the server ran out of connection slots after ${held.size} of ${total} ("${opened.outOfSlots}"): ` +
          `holding those ${held.size} — an exhausted server, which is what the drill is for`,
      );
    }
    if (opts.output === 'json') {
      io.out.write(
        `${JSON.stringify(jsonDocument(opts, label, held, opened.outOfSlots), null, 2)}\n`,
      );
    }
    const until = opts.holdSeconds
      ? `for ${formatDuration(opts.holdSeconds)}; Ctrl-C releases them sooner.`
      : 'until Ctrl-C, which releases them.';
    result(
      `Holding ${plural(held.size, 'session')} on ${label}: ` +
        `${describeCounts(counts, opts.applications)} ${until}`,
    );

    holding = true;
    const timer = opts.holdSeconds ? setTimeout(stop, opts.holdSeconds * 1000) : undefined;
    await stopped;
    clearTimeout(timer);
    reporter.flush();
    const releasing = held.size;
    await releaseAll([...held], opts.batchSize);
    const gone = heldAtStart - releasing;
    result(
      `Released ${plural(releasing, 'session')}` +
        (gone > 0 ? ` (${gone} had ended from outside).` : '.'),
    );
    return { exitCode: ExitCode.ok, status: 'released' };
  } finally {
    reporter.flush();
    // An error part-way (other than running out of slots) released its sessions already; this
    // covers any other way out.
    await releaseAll([...held], opts.batchSize);
    restoreSignals();
  }
}

function countByKind(sessions: Iterable<DrillSession>): Record<DrillKind, number> {
  const counts = { idle: 0, idleInTx: 0, long: 0 };
  for (const s of sessions) counts[s.kind]++;
  return counts;
}

function jsonDocument(
  opts: DrillOptions,
  label: string,
  held: Set<DrillSession>,
  outOfSlots: string | undefined,
) {
  const pids = { idle: [] as number[], idleInTx: [] as number[], long: [] as number[] };
  for (const s of held) pids[s.kind].push(s.pid);
  for (const k of DRILL_KINDS) pids[k].sort((a, b) => a - b);
  return {
    poolctl: poolctlVersion(),
    command: 'drill',
    target: label,
    requested: opts.counts,
    held: countByKind(held),
    pids,
    applications: opts.applications,
    outOfSlots: outOfSlots ?? null,
    hold: opts.holdSeconds ? formatDuration(opts.holdSeconds) : null,
  };
}
