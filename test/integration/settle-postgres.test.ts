/**
 * A kill is judged from a read taken `settle_after` (2s) after it, not the instant its victims are
 * gone: 36 clients that reconnect as soon as they are killed are back within milliseconds, and a
 * read at that instant called the server healthy. Clients that stay gone: healthy as before.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readEvents, sleep } from '../helpers/expect.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { reconnectingClients, type ReconnectingClients } from '../helpers/reconnecting.js';
import { runCli, startCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

const CLIENTS = 36;

describe('mitigate waits settle_after before it reads the server after a kill (PostgreSQL)', () => {
  let server: PgServer;
  let rig: ReconnectingClients | HeldSessions | undefined;

  beforeAll(async () => {
    // 37 usable slots (40 − 3 reserved): 36 clients are 97.3 %, critical.
    server = await startPostgres({ maxConnections: 40 });
  }, 120_000);
  afterAll(async () => server?.stop());
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  const mitigate = (transcript: string, ...extra: string[]) => [
    'mitigate',
    '--pg',
    server.superuserUrl,
    '--action',
    'kill-idle',
    '--set',
    'kill_idle_after=1s',
    '--transcript',
    transcript,
    ...extra,
  ];
  const transcriptPath = () => join(mkdtempSync(join(tmpdir(), 'poolctl-settle-')), 't.jsonl');

  it('clients that reconnect at once: critical 2s after the kill, exit 4, the refill named', async () => {
    const clients = await reconnectingClients(server.appUrl, { count: CLIENTS });
    rig = clients;
    await sleep(1200); // idle past kill_idle_after=1s
    const transcript = transcriptPath();
    const r = await runCli([...mitigate(transcript), '--yes', '--output', 'json']);
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe('critical');
    const [action] = report.actions;
    expect(
      action.results.filter((x: { outcome: string }) => x.outcome === 'terminated'),
    ).toHaveLength(CLIENTS);
    expect(clients.reconnects()).toBeGreaterThanOrEqual(CLIENTS);
    // The after-numbers are the settled read's, and so are the command's.
    expect(action.settle.afterS).toBe(2);
    expect(action.settle.connectionsAfter).toBe(CLIENTS);
    expect(action.after.connections).toBe(CLIENTS);
    expect(report.metrics.connections).toBe(CLIENTS);
    expect(action.settle).toMatchObject({ connectionsLeft: 0, newConnections: CLIENTS });
    const refill = report.findings.find((f: { id: string }) => f.id === 'refilled-after-kill');
    expect(refill).toMatchObject({ severity: 'warning', suggest: ['restart-app', 'rollback-app'] });
    expect(refill.message).toContain(`of terminating ${CLIENTS}`);
    expect(r.durationMs).toBeGreaterThan(2000);
    // The transcript's action says when its after-numbers were read.
    const event = readEvents(transcript).find((e) => e.type === 'action')!;
    expect(event.settle).toEqual(action.settle);
    const md = await runCli(['transcript', 'export', transcript, '--format', 'md']);
    expect(md.stdout).toMatch(/measured 2s after, \d+ new connections by then/);
  });

  it('human output says when it measured and that the application refills what was killed', async () => {
    rig = await reconnectingClients(server.appUrl, { count: CLIENTS });
    await sleep(1200);
    const r = await runCli([...mitigate(transcriptPath()), '--yes', '--no-color']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toContain(`${CLIENTS} terminated`);
    expect(r.stdout).toMatch(/2s after the kill: Utilization 97\.3% → 9\d\.\d%/);
    expect(r.stdout).toMatch(
      /! 36 new connections within 2s of terminating 36 \(the kill left 0, \d+ at its confirmation, 36 after 2s\): the application reconnects what is killed/,
    );
    expect(r.stdout).toContain('✖ Still critical');
  });

  it('clients that stay gone: healthy 2s after the kill, exit 0, no refill', async () => {
    rig = await holdSessions(server.appUrl, { idle: CLIENTS, appNames: ['api'] });
    await sleep(1200);
    const r = await runCli([...mitigate(transcriptPath()), '--yes', '--output', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe('healthy');
    expect(report.metrics.connections).toBe(0);
    expect(report.actions[0].settle).toEqual({
      afterS: 2,
      connectionsLeft: 0,
      connectionsAtOnce: 0,
      connectionsAfter: 0,
      newConnections: 0,
    });
    expect(report.findings.map((f: { id: string }) => f.id)).not.toContain('refilled-after-kill');
  });

  it('--set settle_after=0s reads at once, as before', async () => {
    rig = await holdSessions(server.appUrl, { idle: 3, appNames: ['api'] });
    await sleep(1200);
    const json = await runCli([
      ...mitigate(transcriptPath(), '--set', 'settle_after=0s'),
      '--yes',
      '--output',
      'json',
    ]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).actions[0].settle).toEqual({ afterS: 0 });
  });

  it('--dry-run and a declined kill do not wait', async () => {
    rig = await holdSessions(server.appUrl, { idle: 3, appNames: ['api'] });
    await sleep(1200);
    const long = ['--set', 'settle_after=30s'];
    const dry = await runCli([...mitigate(transcriptPath(), ...long), '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.durationMs).toBeLessThan(15_000);
    const declined = await runCli(mitigate(transcriptPath(), ...long));
    expect(declined.code, declined.stderr).toBe(5);
    expect(declined.durationMs).toBeLessThan(15_000);
  });

  it('Ctrl-C during the settle exits 130 at once; the kill is already recorded', async () => {
    const held = await holdSessions(server.appUrl, { idle: 3, appNames: ['api'] });
    rig = held;
    await sleep(1200);
    const transcript = transcriptPath();
    const run = startCli([...mitigate(transcript, '--set', 'settle_after=60s'), '--yes']);
    // Every outcome is on disk before the settle begins.
    const deadline = Date.now() + 20_000;
    const terminated = () =>
      existsSync(transcript)
        ? readFileSync(transcript, 'utf8').split('"outcome":"terminated"').length - 1
        : 0;
    while (terminated() < held.pids.length) {
      if (Date.now() > deadline) throw new Error(`no outcomes recorded: ${run.stderr()}`);
      await sleep(10);
    }
    await sleep(300); // into the settle
    const sent = Date.now();
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(Date.now() - sent).toBeLessThan(3000);
    const events = readEvents(transcript);
    expect(events.find((e) => e.type === 'intent')?.victims).toHaveLength(held.pids.length);
    expect(events.at(-1)).toMatchObject({ type: 'session.end', status: 'interrupted' });
  });
});
