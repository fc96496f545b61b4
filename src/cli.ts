import { Command, Option } from 'commander';
import { exitCodeOf, ExitCode, isExpected } from './errors.js';
import type { IO } from './io/io.js';
import type { Transcript } from './transcript/types.js';
import { poolctlVersion } from './version.js';
import { ENGINE_LIST } from './engines.js';
import { InterruptGate } from './interrupt.js';

// Only commander is imported at the top: `poolctl --help` must not load drivers or prompt
// libraries. Each action imports its command module when it runs.

function addTargetFlags(cmd: Command): Command {
  // One flag per engine in src/engines.ts: --pg, --mysql.
  for (const engine of ENGINE_LIST) cmd.option(`--${engine.flag} <url>`, engine.flagHelp);
  return cmd
    .option('--connect-timeout <duration>', 'give up connecting after this long', '5s')
    .option(
      '--statement-timeout <duration>',
      'give up on any one statement (or a server that stopped answering) after this long',
      '10s',
    );
}

/** The systems around the database: the application's metrics and its cluster. */
function addSystemFlags(cmd: Command): Command {
  return cmd
    .option('--prometheus <url>', "Prometheus for the application's pool (else PROMETHEUS_URL)")
    .option('--prometheus-ca <file>', "CA certificate (PEM) for Prometheus's HTTPS")
    .option('--kube-context <name>', 'Kubernetes context poolctl reads and changes with kubectl')
    .option('--namespace <ns>', "the application's Kubernetes namespace")
    .option('--kubectl <path>', 'kubectl binary (default: kubectl on PATH, with --kube-context)');
}

function addModeFlags(cmd: Command): Command {
  return cmd
    .option('--runbook <id|path>', 'runbook to follow (default: <engine>/pool-exhausted)')
    .option(
      '--set <name=value>',
      'runbook parameter, e.g. --set kill_idle_after=10m (repeatable)',
      collect,
      [],
    )
    .option('--non-interactive', 'never prompt (also when CI=true or stdin is not a terminal)')
    .addOption(
      new Option('--output <format>', 'result format on stdout')
        .choices(['human', 'json'])
        .default('human'),
    )
    .option('--transcript <path>', 'write the incident transcript here')
    .option('--incident <id>', 'incident id: runs with the same id share one transcript')
    .option('--no-color', 'no colours (also NO_COLOR)')
    .option('--debug', 'print stack traces of internal errors');
}

function addSafetyFlags(cmd: Command): Command {
  return cmd
    .option('--yes', 'approve destructive steps without a prompt (required when not interactive)')
    .option('--dry-run', 'show what would be touched; never change anything')
    .option('--protect-user <name>', 'never touch sessions of this user (repeatable)', collect, [])
    .option(
      '--protect-app <name>',
      'never touch sessions of this application_name (repeatable)',
      collect,
      [],
    )
    .option('--include-superusers', "also touch superusers' sessions (spared by default)")
    .option('--max-victims <n>', 'touch at most this many sessions in one step (oldest first)')
    .option(
      '--escalate [grace]',
      'cancel first; terminate what still runs after the grace (default 10s)',
    )
    .option('--kill-timeout <duration>', 'wait this long for killed sessions to be gone', '5s')
    .option(
      '--allow-oversubscribe',
      'with --yes: scale or grow pools past the database capacity ((replicas + surge) × (pool_size + max_overflow) ≤ usable − buffer)',
    );
}

/**
 * The IO with stdout passed through the transcript's redaction: what the screen shows (a by-hand
 * step's command from a `--set` value like `https://user:pw@…`, a query's text) never shows
 * a password. Prompts and progress on stderr carry no server or flag text.
 */
function withRedactedResults(io: IO, redactText: (text: string) => string): IO {
  const out = io.out;
  const write = out.write.bind(out) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const redacting = new Proxy(out, {
    get(target, key) {
      if (key === 'write') {
        return (chunk: unknown, ...rest: unknown[]) =>
          write(typeof chunk === 'string' ? redactText(chunk) : chunk, ...rest);
      }
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
  return { ...io, out: redacting };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * Runs poolctl with the user's arguments (`process.argv` without node and the script). Nothing
 * happens at import: bin/poolctl.js imports and calls this.
 */
export async function main(argv: string[]): Promise<void> {
  let transcript: Transcript | undefined;
  let commanderErr = '';
  const debug = argv.includes('--debug');
  // With --output json every exit prints one document on stdout, failures included. Loaded up
  // front only then (the Ctrl-C handler writes it synchronously): --help stays commander alone.
  const jsonReport = wantsJson(argv) ? await import('./io/json-report.js') : undefined;
  const failed = (code: number, message: string) => {
    if (!jsonReport || code === ExitCode.ok) return;
    jsonReport.writeErrorReport(process.stdout, {
      argv,
      code,
      message,
      incident: transcript?.incident,
      transcript,
    });
  };

  // Ctrl-C during a destructive step is deferred to the step's end (src/interrupt.ts).
  const interrupts = new InterruptGate();

  async function makeDeps() {
    const [
      { systemIO },
      { InquirerPrompter },
      { connectDatabase },
      { openTranscript },
      { redactText },
      { httpClient },
      { execaRunner },
    ] = await Promise.all([
      import('./io/io.js'),
      import('./io/prompter.js'),
      import('./targets/connect.js'),
      import('./transcript/writer.js'),
      import('./transcript/redact.js'),
      import('./io/http.js'),
      import('./io/process.js'),
    ]);
    return (flags: { nonInteractive?: boolean; color?: boolean }) => {
      const io = withRedactedResults(
        systemIO({
          nonInteractive: flags.nonInteractive,
          noColor: flags.color === false,
          env: process.env,
        }),
        redactText,
      );
      return {
        io,
        env: process.env,
        argv: ['poolctl', ...argv],
        prompter: () => new InquirerPrompter(io),
        connect: connectDatabase,
        http: httpClient,
        processes: () => execaRunner,
        interrupts,
        openTranscript,
        onTranscript: (t: Transcript) => (transcript = t),
        now: () => new Date(),
      };
    };
  }

  const program = new Command()
    .name('poolctl')
    .description(
      'Database connection pool exhausted? poolctl runs the runbook for you: diagnose, mitigate, verify, prevent.',
    )
    .version(poolctlVersion(), '-V, --version')
    .showSuggestionAfterError()
    // commander repeats what was typed in its errors ("unknown option '--pg=postgres://u:pw@…'"):
    // held until the handler below has loaded the redaction, and printed there.
    .configureOutput({ writeErr: (text) => (commanderErr += text) })
    // Set before the subcommands are declared: they inherit it. --help and --version exit 0, usage
    // mistakes 2.
    .exitOverride((err) => {
      throw Object.assign(err, {
        exitCode: err.exitCode === 0 ? 0 : ExitCode.usage,
        commander: true,
      });
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 healthy · 2 usage · 3 target unreachable · 4 unhealthy · 5 declined · 130 interrupted

Examples:
  $ poolctl diagnose --pg postgres://postgres@db:5432/app
  $ DATABASE_URL=postgres://… poolctl diagnose --output json`,
    );

  addSafetyFlags(
    addModeFlags(
      addSystemFlags(
        addTargetFlags(
          program
            .command('diagnose')
            .description(
              'find out how full the server is, who holds the connections and what to do',
            )
            .option('--step', 'pause after every step: continue, skip, re-run, add a note, quit'),
        ),
      ),
    ),
  )
    .addHelpText(
      'after',
      `
At a terminal, diagnose then offers the fitting mitigation, asks before anything destructive,
verifies the recovery and writes one transcript. Without one (CI, --output json) it only reports.

Examples:
  $ poolctl diagnose --pg postgres://postgres@db:5432/app
  $ poolctl diagnose --set long_query_after=1m --set leak_idle_after=30m
  $ poolctl diagnose --output json > diagnosis.json; echo "exit $?"   # 4 when critical`,
    )
    .action(async (flags) => {
      const [{ parseDiagnoseOptions, runDiagnose }, deps] = await Promise.all([
        import('./commands/diagnose.js'),
        makeDeps(),
      ]);
      const outcome = await runDiagnose(parseDiagnoseOptions(flags), deps(flags));
      process.exitCode = outcome.exitCode;
    });

  addSafetyFlags(
    addModeFlags(
      addSystemFlags(
        addTargetFlags(
          program
            .command('mitigate')
            .description(
              'free connections: terminate or cancel sessions, safely, with before/after numbers',
            )
            .option(
              '--action <id>',
              'runbook action to run, e.g. kill-idle (repeatable)',
              collect,
              [],
            )
            .option(
              '--pid <pid>',
              'act on this one session (terminate-pid, or cancel-pid with --cancel)',
            )
            .option('--cancel', 'with --pid: cancel its query instead of terminating the session'),
        ),
      ),
    ),
  )
    .addHelpText(
      'after',
      `
Actions: kill-idle, kill-idle-in-tx, cancel-long, kill-long, terminate-pid, cancel-pid (the
database); restart-app, rollback-app, scale-app, raise-pool-size, route-reads (kubectl:
--kube-context); scale-pgbouncer (PostgreSQL: pgbouncer.ini ConfigMap patch and restart);
raise-max-connections (MySQL/MariaDB: SET GLOBAL, at once; PostgreSQL: ALTER SYSTEM, in effect
after a restart, which restart-postgres says how to do by hand).
Each shows exactly what it will touch and asks first (or needs --yes).

Examples:
  $ poolctl mitigate                                    # measure, then choose (interactive)
  $ poolctl mitigate --action kill-idle --dry-run       # who would be terminated
  $ poolctl mitigate --action kill-idle --yes --protect-app migrations
  $ poolctl mitigate --action cancel-long --escalate 15s --yes
  $ poolctl mitigate --pid 4242 --yes
  $ poolctl mitigate --action restart-app --kube-context prod --namespace shop`,
    )
    .action(async (flags) => {
      const [{ parseMitigateOptions, runMitigate }, deps] = await Promise.all([
        import('./commands/mitigate.js'),
        makeDeps(),
      ]);
      const outcome = await runMitigate(parseMitigateOptions(flags), deps(flags));
      process.exitCode = outcome.exitCode;
    });

  addModeFlags(
    addSystemFlags(
      addTargetFlags(
        program
          .command('verify')
          .description(
            'check the recovery against the runbook thresholds (exit 0 healthy, 4 not yet)',
          )
          .option('--wait <duration>', 'keep checking until healthy or this long has passed')
          .option('--interval <duration>', 'time between checks with --wait', '5s'),
      ),
    ),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ poolctl verify --pg postgres://postgres@db:5432/app
  $ poolctl verify --wait 2m --incident inc-20261122-031502-k3f9 --output json`,
    )
    .action(async (flags) => {
      const [{ parseVerifyOptions, runVerify }, deps] = await Promise.all([
        import('./commands/verify.js'),
        makeDeps(),
      ]);
      const outcome = await runVerify(parseVerifyOptions(flags), deps(flags));
      process.exitCode = outcome.exitCode;
    });

  addModeFlags(
    addSystemFlags(
      addTargetFlags(
        program
          .command('prevent')
          .description(
            "audit the setup against the seeds' prevention: timeouts, limits, capacity, root causes; emit alert rules, a pgbouncer.ini, pool settings",
          )
          .option(
            '--check',
            'CI form: no prompts, the JSON document, exit 4 when a critical audit fails',
          )
          .option(
            '--apply <id...>',
            'apply a fix, e.g. statement-timeout, idle-in-transaction-timeout (repeatable)',
            collect,
            [],
          )
          .option(
            '--yes',
            'apply without a prompt (required when not interactive); with -o: replace the file',
          )
          .option('--dry-run', 'show what --apply would change; never change anything')
          .addOption(
            new Option('--emit <kind>', "write a file filled with the target's numbers").choices([
              'alerts',
              'pgbouncer',
              'pool-config',
            ]),
          )
          .option('-o, --out <file>', 'with --emit: write here instead of stdout'),
      ),
    ),
  )
    .addHelpText(
      'after',
      `
Audits (runbook prevent phase): PostgreSQL statement_timeout and
idle_in_transaction_session_timeout (critical when off), idle_session_timeout (risky behind a
pooler), transaction_timeout (17+), max_connections and reserved slots; MySQL/MariaDB
wait_timeout, interactive_timeout, max_statement_time / max_execution_time, max_connections;
the capacity formula (replicas + surge) × (pool_size + max_overflow) ≤ usable − buffer, each number
from --set, else the Deployment (--kubectl), else --prometheus (db_pool_connections_max per replica).
Root causes with their evidence: connection-leak, long-transaction, n-plus-one, missing-timeout.
Fixes (--apply): statement-timeout, idle-in-transaction-timeout (PostgreSQL: ALTER DATABASE
<target db> SET …, for new sessions; MySQL/MariaDB: SET GLOBAL, plus the my.cnf line to keep it).
At a terminal without --apply, prevent offers each missing fix (its own preview and approval) and
audits again; the diagnose and mitigate wizards offer the same after a verify that recovered.

--emit alerts       Prometheus rules: the seed's DatabaseConnectionPoolCritical, a warning sibling,
                    wait p95, long queries, and the server's side from postgres_exporter/mysqld_exporter
--emit pgbouncer    a pgbouncer.ini in transaction mode for the target's database (no secrets: it
                    says how to make the auth_file)
--emit pool-config  SQLAlchemy, HikariCP and node-postgres settings sized by
                    (replicas + surge) × (pool_size + max_overflow) ≤ usable − buffer
-o FILE refuses to replace an existing file without --yes (exit 5).

Examples:
  $ poolctl prevent --pg postgres://postgres@db:5432/app
  $ poolctl prevent --check; echo "exit $?"          # 4 when a critical audit fails
  $ poolctl prevent --apply statement-timeout --apply idle-in-transaction-timeout --yes
  $ poolctl prevent --set replicas=3 --set pool_size=20 --set max_overflow=10 --output json
  $ poolctl prevent --emit alerts -o pool-alerts.yml && promtool check rules pool-alerts.yml
  $ poolctl prevent --emit pgbouncer --set pgbouncer_port=6432 > pgbouncer.ini
  $ poolctl prevent --emit pool-config --set replicas=6 --set pool_size=20 --set max_overflow=10`,
    )
    .action(async (flags) => {
      if (flags.emit !== undefined) {
        const [{ parseEmitOptions, runEmit }, deps] = await Promise.all([
          import('./commands/emit.js'),
          makeDeps(),
        ]);
        const outcome = await runEmit(parseEmitOptions(flags), deps(flags));
        process.exitCode = outcome.exitCode;
        return;
      }
      const [{ parsePreventOptions, runPrevent }, deps] = await Promise.all([
        import('./commands/prevent.js'),
        makeDeps(),
      ]);
      const outcome = await runPrevent(parsePreventOptions(flags), deps(flags));
      process.exitCode = outcome.exitCode;
    });

  addTargetFlags(
    program
      .command('drill')
      .description('practise on a local server: hold idle, idle-in-transaction and long sessions')
      .option('--idle <n>', 'sessions left idle (application/program name api)')
      .option('--idle-in-tx <n>', 'sessions idle in an open transaction (worker)')
      .option('--long <n>', 'sessions running a long pg_sleep / SLEEP() (batch)')
      .option('--hold <duration>', 'release after this long (default: until Ctrl-C)')
      .option('--allow-remote', 'allow a host that is not loopback or a unix socket')
      .option('--app-names <list>', 'application names: idle,idle-in-tx,long (or one for all)')
      .option('--batch-size <n>', 'connects in flight at once', '50')
      .addOption(
        new Option('--output <format>', 'json: the held pids on stdout once all are open')
          .choices(['human', 'json'])
          .default('human'),
      )
      .option('--debug', 'print stack traces of internal errors'),
  )
    .addHelpText(
      'after',
      `
Holds the sessions until Ctrl-C or --hold, then releases every one (long statements are
cancelled on the server) and exits 0. Refuses hosts that are not loopback unless --allow-remote.

Examples:
  $ poolctl drill --pg postgres://app@127.0.0.1:5432/app --idle 20 --idle-in-tx 5 --long 5
  $ poolctl drill --mysql mysql://app@127.0.0.1:3306/app --idle 20 --long 5
  $ poolctl drill --idle 100 --hold 10m --output json > drill.json &`,
    )
    .action(async (flags) => {
      const [{ parseDrillOptions, runDrill }, { systemIO }] = await Promise.all([
        import('./commands/drill.js'),
        import('./io/io.js'),
      ]);
      const opts = parseDrillOptions(flags);
      const io = systemIO({ nonInteractive: true, env: process.env });
      const outcome = await runDrill(opts, { io, env: process.env });
      process.exitCode = outcome.exitCode;
    });

  const runbooks = program.command('runbooks').description('list, show and validate runbooks');
  runbooks
    .command('list')
    .description('the bundled runbooks')
    .addOption(new Option('--output <format>').choices(['human', 'json']).default('human'))
    .action(async (flags) => runRunbooksCommand({ ...flags, action: 'list' }));
  runbooks
    .command('show')
    .description('parameters and steps of a runbook')
    .argument('<id>', 'runbook id, e.g. postgres/pool-exhausted')
    .addOption(new Option('--output <format>').choices(['human', 'json']).default('human'))
    .action(async (id, flags) => runRunbooksCommand({ ...flags, action: 'show', id }));
  runbooks
    .command('validate')
    .description('check runbook files against the schema (default: the bundled sources)')
    .argument('[paths...]', 'runbook YAML files')
    .addOption(new Option('--output <format>').choices(['human', 'json']).default('human'))
    .action(async (paths, flags) => runRunbooksCommand({ ...flags, action: 'validate', paths }));

  async function runRunbooksCommand(flags: Record<string, unknown>) {
    const { parseRunbooksOptions, runRunbooks } = await import('./commands/runbooks.js');
    const opts = parseRunbooksOptions(flags);
    process.exitCode = await runRunbooks(opts, {
      out: (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
      err: (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
    });
  }

  const transcripts = program
    .command('transcript')
    .description('list, show and export incident transcripts (the record for the postmortem)');
  transcripts
    .command('list')
    .description('the incidents under $XDG_STATE_HOME/poolctl/incidents, newest first')
    .addOption(new Option('--output <format>').choices(['human', 'json']).default('human'))
    .action(async (flags) => runTranscriptCommand({ ...flags, action: 'list' }));
  transcripts
    .command('show')
    .description('the timeline of an incident')
    .argument('<file|incident>', 'a transcript file, or an incident id from `transcript list`')
    .option('--no-color', 'no colours (also NO_COLOR)')
    .action(async (source, flags) => runTranscriptCommand({ ...flags, action: 'show', source }));
  transcripts
    .command('export')
    .description('the incident for the postmortem: Markdown, JSON, or an HTML page with a chart')
    .argument('<file|incident>', 'a transcript file, or an incident id from `transcript list`')
    .addOption(
      new Option('--format <format>', 'md, json or html (default: from -o, else md)').choices([
        'md',
        'json',
        'html',
      ]),
    )
    .option('-o, --out <file>', 'write here (mode 0600) instead of stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ poolctl transcript export inc-20261122-031502-k3f9 > postmortem.md
  $ poolctl transcript export inc-20261122-031502-k3f9 -o incident.html
  $ poolctl transcript export ./demo.jsonl --format json | jq .summary`,
    )
    .action(async (source, flags) => runTranscriptCommand({ ...flags, action: 'export', source }));

  async function runTranscriptCommand(flags: Record<string, unknown>) {
    const [{ parseTranscriptOptions, runTranscript }, { systemIO }, { makeStyle }] =
      await Promise.all([
        import('./commands/transcript.js'),
        import('./io/io.js'),
        import('./io/render.js'),
      ]);
    const opts = parseTranscriptOptions(flags);
    const io = systemIO({ noColor: flags.color === false, env: process.env });
    process.exitCode = await runTranscript(opts, {
      out: (s: string) => io.out.write(s),
      err: (s: string) => io.err.write(s),
      env: process.env,
      style: makeStyle(io.color),
    });
  }

  // A reader that went away (`poolctl … | head`) is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });

  process.on('SIGINT', () => {
    // The run has ended and its transcript says how: only the clean-up (closing the connection)
    // is left. Stop now, with the exit code the record already holds.
    if (transcript?.exitCode !== undefined) process.exit(transcript.exitCode);
    if (interrupts.defer()) {
      process.stderr.write(
        '\npoolctl: finishing the step in flight (a kill or a change) and recording it; Ctrl-C again to stop now\n',
      );
      return;
    }
    transcript?.end('interrupted', ExitCode.interrupted);
    process.stderr.write('\npoolctl: interrupted; the transcript is closed\n');
    failed(ExitCode.interrupted, 'interrupted');
    process.exit(ExitCode.interrupted);
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    const commanderExit = (err as { commander?: boolean }).commander;
    const code = exitCodeOf(err);
    // --help and --version end here too, with nothing to redact: they load nothing more.
    const { redactText } =
      commanderExit && code === ExitCode.ok
        ? { redactText: (text: string) => text }
        : await import('./transcript/redact.js');
    process.stderr.write(redactText(commanderErr));
    // commander has printed its own line ("error: unknown option '--frobnicate'") on stderr.
    // Messages may quote a URL or a flag as given: never its password.
    const message = redactText(((err as Error)?.message ?? String(err)).replace(/^error: /, ''));
    failed(code, message);
    if (!commanderExit) {
      if (code === ExitCode.interrupted) {
        process.stderr.write(
          'poolctl: interrupted; nothing more was changed and the transcript is closed\n',
        );
      } else if (isExpected(err)) {
        process.stderr.write(`poolctl: ${message}\n`);
      } else {
        process.stderr.write(
          `poolctl: internal error: ${message}${debug ? '' : ' (run with --debug for details)'}\n`,
        );
        if (debug) process.stderr.write(`${redactText((err as Error)?.stack ?? '')}\n`);
      }
    }
    transcript?.end(code === ExitCode.interrupted ? 'interrupted' : 'error', code);
    process.exitCode = code;
  }
}

/** True when this run asked for `--output json` (either spelling), read from the raw argv. */
function wantsJson(argv: string[]): boolean {
  return argv.some((a, i) => a === '--output=json' || (a === '--output' && argv[i + 1] === 'json'));
}
