import { engineUrlFlags, type EngineUrlFlags } from '../engines.js';
import { UsageError } from '../errors.js';
import type { IO } from '../io/io.js';
import type { Prompter } from '../io/prompter.js';
import { parseDuration } from '../runbook/params.js';
import type { TargetFlags } from '../targets/resolve.js';
import type { InterruptGate } from '../interrupt.js';
import type { HttpClient } from '../io/http.js';
import type { ProcessRunner } from '../io/process.js';
import type { DatabaseTarget, DatabaseTargetSpec } from '../targets/types.js';
import type { Transcript } from '../transcript/types.js';
import type { TranscriptOptions } from '../transcript/writer.js';

/** Flags every command that talks to a target shares, as commander hands them over. */
export interface CommonFlags extends EngineUrlFlags {
  connectTimeout?: string;
  statementTimeout?: string;
  runbook?: string;
  set?: string[];
  output?: string;
  nonInteractive?: boolean;
  color?: boolean;
  transcript?: string;
  incident?: string;
  debug?: boolean;
  prometheus?: string;
  prometheusCa?: string;
  kubeContext?: string;
  namespace?: string;
  kubectl?: string;
}

export interface CommonOptions {
  target: TargetFlags;
  /** Prometheus and kubectl, as given; resolved with the environment when the run opens. */
  systems: SystemFlags;
  runbookId?: string;
  sets: string[];
  output: 'human' | 'json';
  nonInteractive: boolean;
  noColor: boolean;
  transcriptPath?: string;
  incident?: string;
}

/** The statement timeout on poolctl's own session: enough for 1,000 sessions, short at 3 AM. */
const STATEMENT_TIMEOUT_S = 10;

export function parseCommonOptions(flags: CommonFlags): CommonOptions {
  const output = flags.output ?? 'human';
  if (output !== 'human' && output !== 'json') {
    throw new UsageError(`--output ${output}: expected human or json`);
  }
  const connectTimeoutS = flags.connectTimeout
    ? parseDuration(flags.connectTimeout, `--connect-timeout ${flags.connectTimeout}`)
    : 5;
  if (connectTimeoutS <= 0) throw new UsageError('--connect-timeout: must be more than 0s');
  const statementTimeoutS = flags.statementTimeout
    ? parseDuration(flags.statementTimeout, `--statement-timeout ${flags.statementTimeout}`)
    : STATEMENT_TIMEOUT_S;
  if (statementTimeoutS <= 0) throw new UsageError('--statement-timeout: must be more than 0s');
  return {
    target: {
      ...engineUrlFlags(flags),
      connectTimeoutMs: Math.round(connectTimeoutS * 1000),
      statementTimeoutMs: Math.round(statementTimeoutS * 1000),
    },
    systems: {
      prometheus: flags.prometheus,
      prometheusCa: flags.prometheusCa,
      kubeContext: flags.kubeContext,
      namespace: flags.namespace,
      kubectl: flags.kubectl,
      timeoutMs: Math.round(statementTimeoutS * 1000),
    },
    runbookId: flags.runbook,
    sets: flags.set ?? [],
    output,
    // JSON is for scripts: a JSON run never stops to ask.
    nonInteractive: Boolean(flags.nonInteractive) || output === 'json',
    noColor: flags.color === false,
    transcriptPath: flags.transcript,
    incident: flags.incident,
  };
}

/**
 * What a command needs from the world, as thunks so that nothing is built before it is used: a
 * diagnose never loads the prompt library unless it asks, and a PostgreSQL run never loads mysql2.
 */
export interface Deps {
  io: IO;
  env: NodeJS.ProcessEnv;
  argv: string[];
  prompter: () => Prompter;
  connect: (spec: DatabaseTargetSpec) => Promise<DatabaseTarget>;
  /** The HTTP client Prometheus is read with (built on first use). */
  http: (opts: { caFile?: string }) => HttpClient;
  /** The process runner kubectl is run with. */
  processes: () => ProcessRunner;
  /** Ctrl-C during a destructive step: the gate the SIGINT handler and the step share. */
  interrupts: InterruptGate;
  openTranscript: (path: string, incident: string, opts?: TranscriptOptions) => Transcript;
  /** The run's transcript, once open, so the top-level handler can close it on any error. */
  onTranscript: (transcript: Transcript) => void;
  now: () => Date;
}

/** The flags of the systems around the database; each is optional. */
export interface SystemFlags {
  prometheus?: string;
  prometheusCa?: string;
  kubeContext?: string;
  namespace?: string;
  kubectl?: string;
  /** How long one Prometheus query or read-only kubectl call may take. */
  timeoutMs: number;
}

/** What a command returns; the top-level handler turns it into the exit code. */
export interface Outcome {
  exitCode: number;
  status: string;
}
