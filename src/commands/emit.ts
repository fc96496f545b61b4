import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { link, open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DeclinedError, ExitCode, UsageError } from '../errors.js';
import { buildReport, writeReport } from '../io/json-report.js';
import { sanitizeInline } from '../io/sanitize.js';
import type { StepOutcome } from '../wizard/model.js';
import { quietReporter, readSteps } from '../wizard/phase.js';
import { PREVENT_DEPLOYMENT_STEP } from '../wizard/prevent.js';
import { capacityOf, type EmitFacts } from './emit-capacity.js';
import {
  EMIT_KINDS,
  renderAlerts,
  renderPgbouncer,
  renderPoolConfig,
  type EmitKind,
} from './emit-files.js';
import {
  parseCommonOptions,
  type CommonFlags,
  type CommonOptions,
  type Deps,
  type Outcome,
} from './common.js';
import { openSession, reportTargets } from './session.js';

export interface EmitFlags extends CommonFlags {
  emit?: string;
  out?: string;
  yes?: boolean;
  /** prevent's own flags: an --emit run does none of them, so it refuses them. */
  check?: boolean;
  apply?: string[];
  dryRun?: boolean;
}

export interface EmitOptions extends CommonOptions {
  kind: EmitKind;
  /** -o FILE: write there (refusing to replace a file without --yes); else stdout. */
  out?: string;
  /** Replace an existing -o FILE. */
  yes: boolean;
}

export function parseEmitOptions(flags: EmitFlags): EmitOptions {
  const kind = flags.emit as EmitKind;
  if (!EMIT_KINDS.includes(kind)) {
    throw new UsageError(`--emit ${flags.emit ?? ''}: expected ${EMIT_KINDS.join(', ')}`);
  }
  if (flags.out !== undefined && flags.out.trim() === '') {
    throw new UsageError('-o, --out: expected a file name');
  }
  const other = [
    flags.check && '--check',
    (flags.apply?.length ?? 0) > 0 && '--apply',
    flags.dryRun && '--dry-run',
  ].filter(Boolean);
  if (other.length > 0) {
    throw new UsageError(
      `--emit writes a file and does not audit or change anything: run ${other.join(', ')} without --emit`,
    );
  }
  return { ...parseCommonOptions(flags), kind, out: flags.out, yes: Boolean(flags.yes) };
}

/** The SQL beside the runbooks, from dist/ (the package) or src/commands/ (tests). */
function factsSql(engine: string): string {
  for (const rel of ['../runbooks/', '../../runbooks/']) {
    const url = new URL(`${rel}${engine}/emit-facts.sql`, import.meta.url);
    if (existsSync(url)) return readFileSync(url, 'utf8');
  }
  throw new Error(`runbooks/${engine}/emit-facts.sql is missing from the installation`);
}

const asNumber = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));

/**
 * `poolctl prevent --emit KIND [-o FILE]`: reads the target's slots and settings, works out the
 * capacity formula, and writes Prometheus rules, a pgbouncer.ini or pool settings filled with them.
 */
export async function runEmit(opts: EmitOptions, deps: Deps): Promise<Outcome> {
  const run = await openSession('prevent', opts, deps);
  const { spec, values, transcript, targets } = run;
  try {
    if (opts.kind === 'pgbouncer' && spec.engine !== 'postgres') {
      throw new UsageError(
        `--emit pgbouncer: PgBouncer pools PostgreSQL only; the target is ${spec.engine} (ProxySQL plays that part there)`,
      );
    }
    if (opts.out !== undefined) checkWritable(opts.out, opts.yes);
    const target = await targets.database();
    const [row] = await target.query(factsSql(spec.engine), []);
    if (!row) throw new Error('emit-facts.sql returned no row');
    const facts: EmitFacts = {
      engine: spec.engine,
      product: target.info.product,
      version: target.info.version,
      host: spec.host,
      port: spec.port,
      user: spec.user,
      database: sanitizeInline(String(row.database ?? spec.database ?? '')),
      maxConnections: Number(row.max_connections),
      superuserReserved: Number(row.superuser_reserved_connections),
      reserved: Number(row.reserved_connections),
      usable: Number(row.usable_connections),
      passwordEncryption:
        row.password_encryption === undefined ? undefined : String(row.password_encryption),
      longQueryTime: asNumber(row.long_query_time),
      waitTimeout: asNumber(row.wait_timeout),
    };
    // The application's numbers as prevent's audit reads them: the Deployment (cluster flags),
    // the pools' maxima (--prometheus). The alert rules use none of them.
    const outcomes: StepOutcome[] =
      opts.kind === 'alerts'
        ? []
        : await readSteps(
            {
              runbook: run.runbook,
              phase: 'prevent',
              values,
              targets,
              transcript,
              reporter: quietReporter,
            },
            [PREVENT_DEPLOYMENT_STEP, 'app-pool-max'],
          );
    const cap = capacityOf(facts, values, Object.keys(run.overrides), outcomes);
    const text =
      opts.kind === 'alerts'
        ? renderAlerts(facts, values)
        : opts.kind === 'pgbouncer'
          ? renderPgbouncer(facts, values, cap)
          : renderPoolConfig(facts, values, cap);
    if (opts.kind === 'pool-config' && !cap.fits) {
      deps.io.err.write(`poolctl: warning: capacity: ${cap.lines[3]}\n`);
    }
    if (opts.kind !== 'alerts' && cap.warning !== undefined) {
      const failed = outcomes
        .filter((o) => o.status === 'failed')
        .map((o) => `${o.title}: ${o.error ?? 'failed'}`);
      const why = failed.length > 0 ? ` (${failed.join('; ')})` : '';
      deps.io.err.write(`poolctl: warning: ${opts.kind}: ${cap.warning}${why}\n`);
    }
    if (opts.out !== undefined) await writeAtomically(opts.out, text, opts.yes);
    transcript.append({
      type: 'note',
      text: `emitted ${opts.kind}${opts.out ? ` to ${opts.out}` : ' on stdout'}: ${[...cap.lines, ...cap.sourceLines].join('; ')}`,
    });
    const status = cap.fits ? 'healthy' : 'critical';
    if (opts.output === 'json') {
      const report = buildReport({
        command: 'prevent',
        runbook: run.runbook.id,
        incident: run.incident,
        status,
        targets: reportTargets(run),
        metrics: {
          max_connections: facts.maxConnections,
          usable_connections: facts.usable,
        },
        transcript,
      });
      writeReport(deps.io, {
        ...report,
        emit: {
          kind: opts.kind,
          ...(opts.out !== undefined ? { file: opts.out } : {}),
          text,
          capacity: {
            replicas: cap.replicas,
            peak_instances: cap.peakInstances,
            budget: cap.budget,
            fits: cap.fits,
            pool_size: cap.poolSize,
            max_overflow: cap.maxOverflow,
            configured: {
              replicas: cap.replicas,
              surge: cap.surgeInstances,
              pool_size: cap.configured.poolSize,
              max_overflow: cap.configured.maxOverflow,
            },
            sources: cap.sources,
            defaults: cap.defaults.map((d) => ({ name: d.name, text: d.text, set: d.set })),
            arithmetic: cap.lines,
          },
        },
      } as typeof report);
    } else if (opts.out !== undefined) {
      deps.io.err.write(
        `poolctl: wrote ${opts.out} (${opts.kind}${opts.kind === 'alerts' ? '' : `; ${cap.sourceLines[0]}`})\n`,
      );
    } else {
      deps.io.out.write(text);
    }
    // Emitting is not an audit: the file was written, whatever the capacity says (exit 0).
    transcript.end(status, ExitCode.ok);
    return { exitCode: ExitCode.ok, status };
  } finally {
    await targets.close();
  }
}

/** Before connecting: a file that exists needs --yes; a directory that does not is a usage error. */
function checkWritable(file: string, yes: boolean): void {
  if (existsSync(file) && !yes) {
    throw new DeclinedError(`-o ${file}: the file exists; pass --yes to replace it`);
  }
  if (!existsSync(dirname(file))) {
    throw new UsageError(`-o ${file}: no such directory ${dirname(file)}`);
  }
}

/**
 * Writes the whole file or nothing: a temporary file beside it, fsynced, then linked into place
 * (which refuses to replace a file that appeared meanwhile) or, with --yes, renamed over it.
 */
async function writeAtomically(file: string, text: string, replace: boolean): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(tmp, 'wx', 0o644);
  } catch (err) {
    throw new UsageError(`-o ${file}: cannot write there (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    await handle.writeFile(text);
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (replace) {
      const { rename } = await import('node:fs/promises');
      await rename(tmp, file);
    } else {
      try {
        await link(tmp, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new DeclinedError(`-o ${file}: the file exists; pass --yes to replace it`);
        }
        throw new UsageError(
          `-o ${file}: cannot write there (${(err as NodeJS.ErrnoException).code})`,
        );
      }
      await unlink(tmp);
    }
  } finally {
    await handle?.close();
    await unlink(tmp).catch(() => undefined);
  }
}
