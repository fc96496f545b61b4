import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { expectOneLine, readEvents } from '../helpers/expect.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

describe('bad input gets one line and the documented exit code', () => {
  let server: PgServer;
  let silent: net.Server;
  let silentPort = 0;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    server = await startPostgres();
    // A black-holed port: it accepts the TCP connection and never says a word.
    silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    silent?.close();
    await server?.stop();
  });

  it('wrong password: exit 3, never printing the password', async () => {
    const url = `postgres://app:not-the-password-xyz@127.0.0.1:${server.port}/appdb`;
    const result = await runCli(['diagnose', '--pg', url]);
    expectOneLine(result, 3, 'password authentication failed for user "app"');
    expect(result.stderr).not.toContain('not-the-password-xyz');
  });

  it('refused port: exit 3', async () => {
    const port = await freePort();
    const result = await runCli(['diagnose', '--pg', `postgres://app@127.0.0.1:${port}/appdb`]);
    expectOneLine(result, 3, `connection refused at 127.0.0.1:${port}`);
  });

  it('black-holed port: exit 3 after the connect timeout', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      `postgres://app:pw@127.0.0.1:${silentPort}/appdb`,
      '--connect-timeout',
      '1s',
    ]);
    expectOneLine(result, 3, `no answer from 127.0.0.1:${silentPort} within 1s`);
    expect(result.durationMs).toBeLessThan(5000);
  });

  it('unknown host: exit 3', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      'postgres://app@no-such-host.invalid:5432/appdb',
    ]);
    expectOneLine(result, 3, 'cannot resolve host "no-such-host.invalid"');
  });

  it('no target at all: exit 2 naming the flag', async () => {
    expectOneLine(await runCli(['diagnose']), 2, '--pg');
  });

  it('bad --set values: exit 2 naming the flag and what was expected', async () => {
    const pgFlag = ['--pg', server.appUrl];
    expectOneLine(
      await runCli(['diagnose', ...pgFlag, '--set', 'kill_idle_after=5x']),
      2,
      '--set kill_idle_after=5x',
      'duration',
    );
    expectOneLine(
      await runCli(['diagnose', ...pgFlag, '--set', 'no_such_thing=1']),
      2,
      'unknown parameter "no_such_thing"',
    );
    expectOneLine(
      await runCli(['diagnose', ...pgFlag, '--set', 'utilization_warning=140']),
      2,
      'utilization_warning',
    );
    expectOneLine(await runCli(['diagnose', ...pgFlag, '--set', 'oops']), 2, 'expected name=value');
  });

  it('bad flags: exit 2', async () => {
    const result = await runCli(['diagnose', '--output', 'yaml', '--pg', server.appUrl]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('yaml');
    expect(
      (await runCli(['diagnose', '--connect-timeout', 'soon', '--pg', server.appUrl])).code,
    ).toBe(2);
    expect((await runCli(['no-such-command'])).code).toBe(2);
    expect(
      (await runCli(['diagnose', '--incident', '../../etc/passwd', '--pg', server.appUrl])).code,
    ).toBe(2);
  });

  it('a malformed runbook: exit 2 naming the file and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'poolctl-badbook-'));
    const file = join(dir, 'broken.yaml');
    writeFileSync(
      file,
      [
        'id: postgres/broken',
        'title: Broken',
        'engine: postgres',
        'sources: []',
        'parameters: {}',
        'diagnose:',
        '  - id: a',
        '    title: A',
        '    why: because',
        '    kind: query',
        '    sql: missing.sql',
        '    findings:',
        '      - { id: f, severity: crit, message: m, suggest: [] }',
        'actions: []',
        'verify: []',
        'prevent: []',
      ].join('\n'),
    );
    const result = await runCli(['diagnose', '--pg', server.appUrl, '--runbook', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('broken.yaml');
    expect(result.stderr).toContain('diagnose[0].findings[0].severity');
    const validate = await runCli(['runbooks', 'validate', file]);
    expect(validate.code).toBe(2);
    expect(validate.stdout + validate.stderr).toContain('diagnose[0].findings[0].severity');
  });

  it('a server that drops poolctl mid-run: exit 3, one line, the transcript closed', async () => {
    const result = await runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--runbook',
      'test/fixtures/runbooks/postgres-dropped/dropped.yaml',
      '--incident',
      'dropped',
    ]);
    expect(result.code).toBe(3);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^poolctl: postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres: the server closed poolctl's connection/,
    );
    const events = readEvents(join(result.stateDir, 'poolctl/incidents/dropped.jsonl'));
    expect(events.some((e) => e.type === 'step.result' && e.step === 'utilization')).toBe(true);
    expect(events.some((e) => e.step === 'never')).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: 'session.end', exitCode: 3 });
  });

  it('reads the password from a pgpass file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'poolctl-pgpass-'));
    const passfile = join(dir, 'pgpass');
    const password = decodeURIComponent(new URL(server.appUrl).password);
    writeFileSync(passfile, `127.0.0.1:${server.port}:appdb:app:${password}\n`);
    chmodSync(passfile, 0o600);
    const result = await runCli(
      ['diagnose', '--pg', `postgres://app@127.0.0.1:${server.port}/appdb`, '--output', 'json'],
      { env: { PGPASSFILE: passfile } },
    );
    expect(result.stderr).toBe('');
    // Connected with the file's password. app lacks pg_read_all_stats, so the diagnosis is
    // critical (it cannot see other roles' sessions) rather than healthy: exit 4, not 3.
    expect(result.code).toBe(4);
    expect(JSON.parse(result.stdout).findings.map((f: { id: string }) => f.id)).toContain(
      'limited-view',
    );
  });
});

describe('a server with every slot taken, the reserved ones too', () => {
  let server: PgServer;
  const held: HeldSessions[] = [];

  beforeAll(async () => {
    // 4 ordinary slots and 1 reserved for superusers: all five taken, the last by a superuser.
    server = await startPostgres({ maxConnections: 5, superuserReservedConnections: 1 });
    held.push(await holdSessions(server.appUrl, { idle: 4 }));
    held.push(await holdSessions(server.superuserUrl, { idle: 1 }));
  });
  afterAll(async () => {
    for (const h of held) await h.close();
    await server?.stop();
  });

  it('a superuser refused is not told to connect as a superuser, but what is left', async () => {
    const result = await runCli(['diagnose', '--pg', server.superuserUrl]);
    expectOneLine(
      result,
      3,
      'sorry, too many clients already',
      "the superusers' reserved ones too",
    );
    expect(result.stderr).not.toMatch(/connect as a superuser|--pg postgres:\/\/postgres@/);
    for (const way of ['Wait', "PgBouncer's admin console", 'already open', 'restart the server']) {
      expect(result.stderr).toContain(way);
    }
  });

  it('an ordinary role refused the same way gets the same advice', async () => {
    const result = await runCli(['diagnose', '--pg', server.appUrl]);
    expectOneLine(result, 3, 'sorry, too many clients already');
    expect(result.stderr).not.toContain('superuser (superuser_reserved_connections)');
  });
});
