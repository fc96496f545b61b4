/**
 * The story `scripts/demo` tells, once the machine is set up and poolctl is built:
 *   1. a throwaway PostgreSQL (the test rig's, in a temporary directory, on a loopback port);
 *   2. the incident: `poolctl drill` fills 95% of the slots an application role can use;
 *   3. on call: `poolctl diagnose` — the wizard at a terminal (choose, confirm, verify), or
 *      without one (CI) the report and then `poolctl mitigate --action kill-idle --yes`;
 *   4. the numbers before and after;
 *   5. the application's side: three replicas of a real pool (one leaks) exporting the seed's
 *      metrics to a real Prometheus; diagnose names the replica, a server-side kill is not a
 *      recovery, a restart with the fixed build is. Everything stops whatever happened (Ctrl-C too).
 * Exit 0 when the story ran, 130 when interrupted, 1 when a step failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeKubectlStandin, type KubectlStandin } from '../test/helpers/kubectl-standin.js';
import { startPoolAppControl, type PoolAppControl } from '../test/helpers/pool-app-control.js';
import { startPoolApp, type PoolApp } from '../test/helpers/pool-app.js';
import { startPostgres, type PgServer } from '../test/helpers/postgres-server.js';
import { startPrometheus, type PrometheusServer } from '../test/helpers/prometheus-server.js';
import { pathWithThisNode } from '../test/helpers/run-cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What users run (package.json "bin"): `#!/usr/bin/env node`, the `node` first on PATH. */
const POOLCTL = path.join(ROOT, 'bin', 'poolctl.js');
const MAX_CONNECTIONS = 30;
const SUPERUSER_RESERVED = 3;
const FILL = 0.95;
/** Long enough for every drill session to age past the 1s thresholds diagnose is given. */
const AGE_MS = 2_000;
/** A drill orphaned by a killed demo still lets go of its server after this. */
const DRILL_CEILING = '30m';
// The four the on-call story needs, and the two that make "Another mitigation" → cancel-long or
// kill-long find the same long queries that long_query_after flagged (their defaults are minutes).
const THRESHOLDS = [
  'leak_idle_after',
  'idle_in_tx_after',
  'long_query_after',
  'kill_idle_after',
  'cancel_long_after',
  'kill_long_after',
];
const SETS = THRESHOLDS.flatMap((name) => ['--set', `${name}=1s`]);

const truthy = (v: string | undefined) => v !== undefined && v !== '' && v !== '0' && v !== 'false';
const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY) && !truthy(process.env.CI);
const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[22m` : s);
const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[22m` : s);
const say = (text = '') => process.stdout.write(`${text}\n`);
const chapter = (n: number, title: string) =>
  say(`\n${bold(`━━ ${n}. ${title} `.padEnd(78, '━'))}`);

/** Children get no connection settings from this shell, and transcripts go to the demo's own dir. */
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'poolctl-demo-'));
const childEnv: NodeJS.ProcessEnv = { XDG_STATE_HOME: stateDir };
for (const [k, v] of Object.entries(process.env)) {
  if (!/^(PG|MYSQL)|^DATABASE_URL$/.test(k)) childEnv[k] ??= v;
}
// The `node` bin/poolctl.js starts with is the one running the demo.
childEnv.PATH = pathWithThisNode(childEnv.PATH);

let server: PgServer | undefined;
let app: PoolApp | undefined;
let prometheus: PrometheusServer | undefined;
let kubectl: KubectlStandin | undefined;
let control: PoolAppControl | undefined;
let drill: Drill | undefined;
let interrupted = false;
let interrupt: () => void = () => {};
const interruption = new Promise<'interrupted'>((resolve) => {
  interrupt = () => resolve('interrupted');
});

/** Ctrl-C reaches the foreground children too (diagnose ends at once); this process tidies up. */
function onSignal(): void {
  if (!interrupted) say(`\n${bold('Interrupted:')} stopping the drill and the server…`);
  interrupted = true;
  interrupt();
}

interface Drill {
  child: ChildProcess;
  /** Its stderr lines not shown yet. */
  pending: string[];
  live: boolean;
  /** Resolves once the drill says it holds every session (its stderr line). */
  holding: Promise<void>;
  document: Promise<{ held: Record<string, number>; pids: Record<string, number[]> }>;
  exited: Promise<number | null>;
}

function startDrill(args: string[]): Drill {
  // Its own process group: the terminal's Ctrl-C must not reach it, the demo stops it (once).
  const child = spawn(POOLCTL, ['drill', ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv,
  });
  const pending: string[] = [];
  let holding: () => void = () => {};
  let partial = '';
  const d: Drill = {
    child,
    pending,
    live: true,
    holding: new Promise<void>((resolve) => (holding = resolve)),
    exited: new Promise((resolve) => child.once('close', (code) => resolve(code))),
    document: new Promise((resolve, reject) => {
      let stdout = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        try {
          resolve(JSON.parse(stdout));
        } catch {
          // not whole yet
        }
      });
      child.once('close', (code) => reject(new Error(`poolctl drill ended (exit ${code})`)));
    }),
  };
  child.once('close', () => holding());
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (d.live) say(dim(`  drill │ ${line}`));
      else pending.push(line);
      // Shown as it happens until the drill holds everything; later lines wait for chapter 4.
      if (line.startsWith('Holding ')) {
        d.live = false;
        holding();
      }
    }
  });
  d.document.catch(() => {});
  return d;
}

async function stopDrill(d: Drill): Promise<void> {
  d.live = true;
  for (const line of d.pending.splice(0)) say(dim(`  drill │ ${line}`));
  if (d.child.exitCode === null && d.child.signalCode === null) {
    d.child.kill('SIGINT');
    const timer = setTimeout(() => d.child.kill('SIGKILL'), 15_000);
    await d.exited;
    clearTimeout(timer);
  }
}

/** Runs poolctl in the foreground, on this terminal; resolves with its exit code. */
function poolctl(args: string[], shown: string[]): Promise<number> {
  say(bold(`$ poolctl ${shown.join(' ')}`));
  const child = spawn(POOLCTL, args, { stdio: 'inherit', env: childEnv });
  return new Promise((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? (signal ? 130 : 1))),
  );
}

async function utilization(s: PgServer, usable: number): Promise<string> {
  const n = Number(
    await s.psql(
      "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    ),
  );
  return `${n} of ${usable} (${((100 * n) / usable).toFixed(1)}%)`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function story(): Promise<number> {
  say(bold('poolctl demo: a connection pool runs out, and poolctl gets it back.'));
  chapter(1, 'A throwaway PostgreSQL');
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const ours = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  server = await startPostgres({
    maxConnections: MAX_CONNECTIONS,
    superuserReservedConnections: SUPERUSER_RESERVED,
  });
  // The rig stops its servers at once on a signal; here the drill lets go first, then the server
  // stops (its 'exit' handler stays as the last resort). Only the rig's listeners go: tsx's own
  // must stay, or it cannot tell that this process handles Ctrl-C and kills it.
  for (const s of SIGNALS) {
    for (const listener of process.listeners(s)) {
      if (!ours.get(s)!.has(listener)) process.off(s, listener);
    }
  }
  if (interrupted) return 130;
  const usable = Number(
    await server.psql(`SELECT current_setting('max_connections')::int
      - current_setting('superuser_reserved_connections')::int
      - coalesce(current_setting('reserved_connections', true)::int, 0)`),
  );
  const version = (await server.psql('SHOW server_version')).trim();
  say(
    `PostgreSQL ${version} on 127.0.0.1:${server.port}: max_connections ${MAX_CONNECTIONS}, ` +
      `${SUPERUSER_RESERVED} reserved for superusers, so ${usable} slots for the application's role "app".`,
  );

  const n = Math.min(usable, Math.ceil(usable * FILL));
  const idle = Math.round(n * 0.6);
  const idleInTx = Math.round(n * 0.2);
  const long = n - idle - idleInTx;
  chapter(2, 'The incident: the pool fills up');
  say(
    'The api leaks idle connections, a worker forgets to commit, a batch job runs long queries:\n' +
      `poolctl drill opens ${n} real sessions as "app" and holds them.`,
  );
  const appUrl = `postgres://app:***@127.0.0.1:${server.port}/appdb`;
  const drillArgs = [
    ...['--idle', `${idle}`, '--idle-in-tx', `${idleInTx}`, '--long', `${long}`],
    ...['--hold', DRILL_CEILING, '--output', 'json'],
  ];
  say(bold(`$ poolctl drill --pg ${appUrl} ${drillArgs.join(' ')} &`));
  drill = startDrill(['--pg', server.appUrl, ...drillArgs]);
  const started = drill.document.then(async (doc) => (await drill!.holding, doc));
  const first = await Promise.race([started, interruption]).catch((err: Error) => err);
  if (first === 'interrupted') return 130;
  if (first instanceof Error) {
    say(`The drill did not start: ${first.message}`);
    return 1;
  }
  const pids = Object.values(first.pids).flat();
  say(
    `${await utilization(server, usable)} of the usable slots are taken ` +
      `(drill pids ${Math.min(...pids)}…${Math.max(...pids)}).`,
  );
  say(dim(`Letting them age ${AGE_MS / 1000}s past the 1s thresholds diagnose is given…`));
  if ((await Promise.race([sleep(AGE_MS), interruption])) === 'interrupted') return 130;
  const startedAt = await utilization(server, usable);

  const suUrl = server.superuserUrl;
  const shownSu = `postgres://postgres:***@127.0.0.1:${server.port}/postgres`;
  // One incident id for diagnose and mitigate: one transcript, one timeline for the postmortem.
  const incident = `demo-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;
  const diagnoseArgs = ['diagnose', '--pg', suUrl, ...SETS, '--incident', incident];
  const diagnoseShown = ['diagnose', '--pg', shownSu, ...SETS, '--incident', incident];
  if (interactive) {
    chapter(3, 'You are on call: poolctl diagnose');
    say(
      'It connects as a superuser (through a reserved slot: the app role has none left), runs the\n' +
        "runbook's read-only steps, then offers the fitting mitigation. The likely answers are the\n" +
        `defaults: ${bold('Enter')} (mitigation), ${bold('y Enter')} (confirm), ${bold('Enter')} (verify), ${bold('Enter')} (done);\n` +
        `after a recovery it offers the prevention audit and the seeds' timeouts (${bold('n')} leaves them to chapter 6).\n`,
    );
    const code = await poolctl(diagnoseArgs, diagnoseShown);
    if (code === 130 || interrupted) return 130;
    if (![0, 4, 5].includes(code)) return failed('poolctl diagnose', code);
  } else {
    chapter(3, 'On call without a terminal (CI): poolctl diagnose, then mitigate --yes');
    const code = await poolctl(diagnoseArgs, diagnoseShown);
    if (interrupted) return 130;
    if (code !== 4) return failed('poolctl diagnose (expected 4: critical)', code);
    say();
    const mitigate = [
      ...['mitigate', '--action', 'kill-idle', '--set', 'kill_idle_after=1s', '--yes'],
      ...['--incident', incident],
    ];
    const mcode = await poolctl([...mitigate, '--pg', suUrl], [...mitigate, '--pg', shownSu]);
    if (interrupted) return 130;
    if (mcode !== 0) return failed('poolctl mitigate', mcode);
  }

  chapter(4, 'Afterwards');
  await sleep(200); // the drill notices its terminated sessions
  say(`Client connections: ${startedAt} before → ${await utilization(server, usable)} now.`);
  say('What the drill saw, then its release:');
  await stopDrill(drill);
  drill = undefined;
  say(`The incident's transcript: ${stateDir}/poolctl/incidents/${incident}.jsonl`);
  say(dim(`  (try: XDG_STATE_HOME=${stateDir} bin/poolctl.js transcript show ${incident})`));
  if (interrupted) return 130;
  return applicationSide(server, suUrl, shownSu);
}

/**
 * The other half of an incident: the application's own pool. Three replicas with real pools
 * (node-postgres, 4 + 2 connections each), api-2 running a build that never returns its
 * connections, their metrics scraped by a real Prometheus.
 */
async function applicationSide(s: PgServer, suUrl: string, shownSu: string): Promise<number> {
  chapter(5, "The application's side: one replica leaks");
  say(
    'Three replicas of an "api" with real pools (4 + 2 connections each) take traffic; api-2 runs a\n' +
      'build that checks connections out and never returns them. Prometheus scrapes their pools.',
  );
  app = await startPoolApp({
    engine: 'postgres',
    url: s.appUrl,
    replicas: 3,
    poolSize: 4,
    maxOverflow: 2,
    poolTimeoutMs: 1000,
    leaking: ['api-2'],
  });
  prometheus = await startPrometheus({ scrape: app.scrapeJobs() });
  app.startTraffic(5);
  say(dim('Waiting until api-2 has leaked its whole pool…'));
  const full = prometheus.waitForResult('db_pool_connections_active{pod="api-2"}', {
    until: (r) => r[0]?.value[1] === '6',
    timeoutMs: 60_000,
  });
  if ((await Promise.race([full, interruption])) === 'interrupted') return 130;
  // The wait p95 over 15s instead of the seed's 5m, so that the recovery shows within the demo.
  const sets = ['--set', 'wait_window=15s'];
  const withProm = (args: string[]) => [...args, '--prometheus', prometheus!.url, ...sets];
  const code = await poolctl(
    withProm(['diagnose', '--pg', suUrl]),
    withProm(['diagnose', '--pg', shownSu]),
  );
  if (interrupted) return 130;
  if (code !== 4) return failed('poolctl diagnose --prometheus (expected 4: critical)', code);

  say('\nKilling the idle sessions on the server frees the server, not the application:');
  const kill = ['mitigate', '--action', 'kill-idle', '--set', 'kill_idle_after=1s', '--yes'];
  const kcode = await poolctl([...kill, '--pg', suUrl], [...kill, '--pg', shownSu]);
  if (interrupted) return 130;
  if (kcode !== 0) return failed('poolctl mitigate', kcode);
  const vcode = await poolctl(
    withProm(['verify', '--pg', suUrl]),
    withProm(['verify', '--pg', shownSu]),
  );
  if (interrupted) return 130;
  if (vcode !== 4) return failed('poolctl verify (expected 4: the application still full)', vcode);

  say(
    '\nRolling the application back to the previous build. There is no cluster here: a kubectl\n' +
      'stand-in on PATH records the call and rolls the replicas back as a Deployment would.',
  );
  control = await startPoolAppControl(app);
  kubectl = writeKubectlStandin({ control: control.url });
  Object.assign(childEnv, {
    KUBECTL_STANDIN_LOG: kubectl.env.KUBECTL_STANDIN_LOG,
    KUBECTL_STANDIN_SCENARIO: kubectl.env.KUBECTL_STANDIN_SCENARIO,
  });
  const rollback = [
    ...['mitigate', '--action', 'rollback-app', '--kube-context', 'standin'],
    ...['--kubectl', kubectl.bin, '--prometheus', prometheus.url, '--yes'],
  ];
  const bcode = await poolctl([...rollback, '--pg', suUrl], [...rollback, '--pg', shownSu]);
  if (interrupted) return 130;
  // 0, or 4 while Prometheus has not yet scraped the new pods: verify --wait decides.
  if (![0, 4].includes(bcode)) return failed('poolctl mitigate --action rollback-app', bcode);
  const wait = ['--wait', '90s', '--interval', '2s', '--set', 'verify_stable_for=4s'];
  const rcode = await poolctl(
    withProm(['verify', '--pg', suUrl, ...wait]),
    withProm(['verify', '--pg', shownSu, ...wait]),
  );
  if (interrupted) return 130;
  if (rcode !== 0) return failed('poolctl verify --wait (expected 0: recovered)', rcode);
  return prevention(suUrl, shownSu);
}

/** The seeds end with Prevention: the audit, then the two timeouts they set, applied. */
async function prevention(suUrl: string, shownSu: string): Promise<number> {
  chapter(6, 'So it does not happen again: poolctl prevent');
  say(
    "A stock server has neither of the seeds' timeouts: the audit exits 4 (in CI, prevent --check\n" +
      'gives the same exit with the JSON). The fixes go through the same preview, approval and\n' +
      'read-back as a kill (at a terminal, prevent offers them itself).',
  );
  // The audit as CI and this script see it (no offer): the fixes follow with --yes.
  const check = ['prevent', '--non-interactive'];
  const ccode = await poolctl([...check, '--pg', suUrl], [...check, '--pg', shownSu]);
  if (interrupted) return 130;
  if (ccode === 0) {
    say(
      'Both timeouts are set already: the wizard offered them after its verify, and you took them.',
    );
    return 0;
  }
  if (ccode !== 4) return failed('poolctl prevent (expected 4: no timeouts)', ccode);
  const apply = [
    ...['prevent', '--apply', 'statement-timeout', '--apply', 'idle-in-transaction-timeout'],
    '--yes',
  ];
  const acode = await poolctl([...apply, '--pg', suUrl], [...apply, '--pg', shownSu]);
  if (interrupted) return 130;
  if (acode !== 0) return failed('poolctl prevent --apply … --yes (expected 0)', acode);
  return 0;
}

function failed(what: string, code: number): number {
  say(`\n${bold(`${what} exited ${code}`)}: the demo stops here.`);
  return 1;
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
let exitCode = 1;
try {
  exitCode = await story();
} catch (err) {
  say(`demo: ${(err as Error).stack ?? String(err)}`);
} finally {
  if (drill) await stopDrill(drill);
  kubectl?.remove();
  await control?.close();
  await app?.stop();
  await prometheus?.stop();
  await server?.stop();
  say(
    dim(exitCode === 0 ? '\nThe drill let go and the throwaway server is gone.' : '\nCleaned up.'),
  );
}
process.exit(interrupted ? 130 : exitCode);
