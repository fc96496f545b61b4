import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// Fault suite: secrets given in URL userinfo, the URL's query (password=, sslpassword=, token=),
// PGPASSWORD / MYSQL_PWD and --set values never appear on stdout, stderr, in the JSON document,
// the transcript or its Markdown, JSON and HTML exports — suggested commands included.

const PROM_SECRET = 'prom-pass-7d1e0c';
const PROM_TOKEN = 'prom-token-9a4b2f';
const SSL_SECRET = 'sslkey-pass-53e8aa';

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Fails if any secret appears in the run's output, its transcripts or their exports. */
async function expectNoSecrets(result: CliResult, secrets: string[]) {
  const seen: [string, string][] = [
    ['stdout', result.stdout],
    ['stderr', result.stderr],
  ];
  const transcripts = filesUnder(result.stateDir).filter((f) => f.endsWith('.jsonl'));
  for (const file of transcripts) {
    seen.push([file, readFileSync(file, 'utf8')]);
    for (const format of ['md', 'json', 'html']) {
      const exported = await runCli(['transcript', 'export', file, '--format', format]);
      expect(exported.code, exported.stderr).toBe(0);
      seen.push([`${file} as ${format}`, exported.stdout + exported.stderr]);
    }
  }
  for (const [where, text] of seen) {
    for (const secret of secrets) expect(text, `${secret} in ${where}`).not.toContain(secret);
  }
  return transcripts;
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

function withoutPassword(url: string): { bare: string; password: string } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { bare: u.toString(), password };
}

describe('PostgreSQL: secrets never leave poolctl', () => {
  let server: PgServer;
  let held: HeldSessions;
  let bare: string;
  let password: string;
  let oncallUrl: string;
  // A --set value that reaches a by-hand command (the kubectl logs line): credentials in a URL,
  // as the prometheus_url parameter carried them before Prometheus became a target.
  const promSet = `label_selector=http://prom:${PROM_SECRET}@127.0.0.1:9/?token=${PROM_TOKEN}`;
  const sets = ['--set', 'leak_idle_after=1s', '--set', 'kill_idle_after=1s', '--set', promSet];

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 20 });
    // The README's on-call role: it sees the sessions app holds, so mitigate may choose among them.
    oncallUrl = await server.createRole('oncall', ['pg_monitor', 'pg_signal_backend']);
    ({ bare, password } = withoutPassword(oncallUrl));
    held = await holdSessions(server.appUrl, { idle: 16 });
    await new Promise((r) => setTimeout(r, 1200));
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  it('password in the userinfo or PGPASSWORD: diagnose on screen with the suggested commands, verify, mitigate --dry-run', async () => {
    const result = await runCli(['diagnose', '--pg', oncallUrl, ...sets]);
    expect([0, 4], result.stderr).toContain(result.code);
    expect(result.stdout).toContain('poolctl mitigate --action kill-idle');
    const [file] = await expectNoSecrets(result, [password, PROM_SECRET, PROM_TOKEN]);
    expect(file).toBeDefined();

    for (const args of [
      ['verify', '--output', 'json'],
      ['mitigate', '--action', 'kill-idle', '--dry-run', ...sets],
    ]) {
      const run = await runCli([...args, '--pg', bare], { env: { PGPASSWORD: password } });
      expect([0, 4]).toContain(run.code);
      await expectNoSecrets(run, [password, PROM_SECRET, PROM_TOKEN]);
    }
  });

  it('password= and sslpassword= in the query: diagnose --output json', async () => {
    const url = `${bare}?password=${password}&sslpassword=${SSL_SECRET}`;
    const result = await runCli(['diagnose', '--output', 'json', '--pg', url, ...sets]);
    expect([0, 4], result.stderr).toContain(result.code);
    const doc = JSON.parse(result.stdout) as { suggested: { command: string }[] };
    expect(doc.suggested.map((s) => s.command).join('\n')).toContain('--action kill-idle');
    await expectNoSecrets(result, [password, SSL_SECRET, PROM_SECRET, PROM_TOKEN]);
  });

  it('in errors: a refused port, a mistyped flag that repeats the URL', async () => {
    const refused = await runCli([
      'diagnose',
      '--pg',
      withPassword(`postgres://app@127.0.0.1:1/appdb`, password),
      '--output',
      'json',
    ]);
    expect(refused.code).toBe(3);
    await expectNoSecrets(refused, [password]);
    const mistyped = await runCli(['diagnose', `--pgg=${server.appUrl}`, '--output', 'json']);
    expect(mistyped.code).toBe(2);
    expect(mistyped.stderr).toContain("unknown option '--pgg=");
    await expectNoSecrets(mistyped, [password]);
  });
});

describe('MariaDB: secrets never leave poolctl', () => {
  let server: MariaDBServer;
  let held: HeldMysqlSessions;
  let bare: string;
  let password: string;
  const sets = ['--set', 'leak_idle_after=1s', '--set', 'kill_idle_after=1s'];

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 30 });
    ({ bare, password } = withoutPassword(server.rootUrl));
    held = await holdMysqlSessions(server.appUrl, { sleep: 28 });
    await new Promise((r) => setTimeout(r, 1200));
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  it('password in the userinfo, the query or MYSQL_PWD: diagnose on screen and as JSON, mitigate --dry-run', async () => {
    const url = `${server.rootUrl}?password=${password}`;
    for (const output of ['human', 'json']) {
      const result = await runCli(['diagnose', '--output', output, '--mysql', url, ...sets]);
      expect([0, 4], result.stderr).toContain(result.code);
      expect(result.stdout).toContain('poolctl mitigate --action kill-idle');
      await expectNoSecrets(result, [password]);
    }
    for (const args of [
      ['diagnose', '--output', 'json', ...sets],
      ['mitigate', '--action', 'kill-idle', '--dry-run', ...sets],
    ]) {
      const result = await runCli([...args, '--mysql', bare], { env: { MYSQL_PWD: password } });
      expect([0, 4]).toContain(result.code);
      await expectNoSecrets(result, [password]);
    }
  });
});
