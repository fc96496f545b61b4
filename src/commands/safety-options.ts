import { UsageError } from '../errors.js';
import type { Prompter } from '../io/prompter.js';
import { parseDuration, parseInteger } from '../runbook/params.js';
import type { IO } from '../io/io.js';
import type { ParameterValues, Runbook } from '../runbook/types.js';
import type { InterruptGate } from '../interrupt.js';
import type { Targets } from '../targets/set.js';
import type { Transcript } from '../transcript/types.js';
import type { MitigationContext, MitigationReporter } from '../wizard/mitigation.js';
import { parseCommonOptions, type CommonFlags, type CommonOptions, type Deps } from './common.js';
import type { RunSession } from './session.js';

/** The flags that shape every destructive step, as commander hands them over. */
export interface SafetyFlags {
  yes?: boolean;
  dryRun?: boolean;
  protectUser?: string[];
  protectApp?: string[];
  includeSuperusers?: boolean;
  maxVictims?: string;
  escalate?: string | boolean;
  killTimeout?: string;
  allowOversubscribe?: boolean;
}

export interface SafetyOptions {
  yes: boolean;
  dryRun: boolean;
  protectUsers: string[];
  protectApps: string[];
  includeSuperusers: boolean;
  maxVictims?: number;
  escalateAfterS?: number;
  killTimeoutMs: number;
  /** A change past the database's capacity may go ahead with --yes (RUNBOOK-006 Prevention 1). */
  allowOversubscribe: boolean;
}

const DEFAULT_ESCALATE = '10s';

/** The options of a command that may run destructive steps (diagnose, mitigate, prevent). */
export interface SafeCommandOptions extends CommonOptions {
  safety: SafetyOptions;
}

/**
 * The common options, then the safety ones, each failing with its own usage error in that order.
 * `common` replaces the flags the common options are read from (prevent --check forces JSON).
 */
export function parseSafeCommandOptions(
  flags: CommonFlags & SafetyFlags,
  common: CommonFlags = flags,
): SafeCommandOptions {
  const options = parseCommonOptions(common);
  return { ...options, safety: parseSafetyOptions(flags) };
}

export function parseSafetyOptions(flags: SafetyFlags): SafetyOptions {
  let maxVictims: number | undefined;
  if (flags.maxVictims !== undefined) {
    maxVictims = parseInteger(flags.maxVictims, `--max-victims ${flags.maxVictims}`);
    if (maxVictims < 1)
      throw new UsageError(`--max-victims ${flags.maxVictims}: expected 1 or more`);
  }
  const escalate = flags.escalate === true ? DEFAULT_ESCALATE : flags.escalate || undefined;
  const killTimeout = flags.killTimeout ?? '5s';
  const killTimeoutS = parseDuration(killTimeout, `--kill-timeout ${killTimeout}`);
  if (killTimeoutS <= 0) throw new UsageError('--kill-timeout: must be more than 0s');
  return {
    yes: Boolean(flags.yes),
    // --dry-run wins over --yes: it never changes anything.
    dryRun: Boolean(flags.dryRun),
    protectUsers: flags.protectUser ?? [],
    protectApps: flags.protectApp ?? [],
    includeSuperusers: Boolean(flags.includeSuperusers),
    maxVictims,
    escalateAfterS: escalate ? parseDuration(escalate, `--escalate ${escalate}`) : undefined,
    killTimeoutMs: Math.round(killTimeoutS * 1000),
    allowOversubscribe: Boolean(flags.allowOversubscribe),
  };
}

/**
 * How a command reports its destructive steps: the terminal's view when there is one, else (JSON)
 * only the notices, on stderr; the record of each step goes into the JSON document.
 */
export function mitigationReporter(io: IO, view?: MitigationReporter): MitigationReporter {
  return (
    view ?? {
      victims() {},
      change() {},
      notice: (text) => io.err.write(`poolctl: ${text}\n`),
      result() {},
    }
  );
}

/**
 * The context a run's destructive steps share: the run's runbook, values, targets and transcript,
 * the --set parameters and the interrupt gate. Without a prompter nothing is asked: a step then
 * needs --yes or --dry-run.
 */
export function sessionMitigationContext(
  safety: SafetyOptions,
  run: RunSession,
  deps: Pick<Deps, 'interrupts'>,
  reporter: MitigationReporter,
  prompter?: Prompter,
  /** The run's own targets unless the steps run on others (prevent's audit connections). */
  targets: Targets = run.targets,
): MitigationContext {
  return mitigationContext(safety, {
    runbook: run.runbook,
    values: run.values,
    targets,
    interrupts: deps.interrupts,
    given: Object.keys(run.overrides),
    transcript: run.transcript,
    reporter,
    prompter,
  });
}

export function mitigationContext(
  safety: SafetyOptions,
  parts: {
    runbook: Runbook;
    values: ParameterValues;
    targets: Targets;
    interrupts: InterruptGate;
    /** The parameters given with --set. */
    given: string[];
    transcript: Transcript;
    reporter: MitigationReporter;
    prompter?: Prompter;
  },
): MitigationContext {
  return {
    ...parts,
    signal: parts.interrupts.signal,
    yes: safety.yes,
    dryRun: safety.dryRun,
    protection: {
      users: safety.protectUsers,
      applications: safety.protectApps,
      defaultApplications: nameList(parts.values.protect_apps_default),
      includeSuperusers: safety.includeSuperusers,
    },
    maxVictims: safety.maxVictims,
    confirmTypedOver: Number(parts.values.confirm_typed_over ?? 20),
    escalateAfterS: safety.escalateAfterS,
    killTimeoutMs: safety.killTimeoutMs,
    allowOversubscribe: safety.allowOversubscribe,
  };
}

/** A runbook parameter holding names separated by commas: `a, b` → ['a', 'b']. */
function nameList(value: unknown): string[] {
  return String(value ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
}
