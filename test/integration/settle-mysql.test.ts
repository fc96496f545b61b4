/**
 * MariaDB: a kill is judged from a read taken `settle_after` (2s) after it. Clients that reconnect
 * as soon as they are killed leave the server as full as before: not healthy, exit 4. Clients
 * that stay gone: healthy, exit 0.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/expect.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { reconnectingClients, type ReconnectingClients } from '../helpers/reconnecting.js';
import { runCli } from '../helpers/run-cli.js';

// 29 of max_connections 30: 96.7 %, critical (poolctl's own connection is not counted).
const CLIENTS = 29;
// The process list counts whole seconds: a 1s threshold needs a full second of sleep.
const AGE_MS = 1200;

describe('mitigate waits settle_after before it reads the server after a kill (MariaDB)', () => {
  let server: MariaDBServer;
  let rig: ReconnectingClients | HeldMysqlSessions | undefined;

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 30 });
  }, 120_000);
  afterAll(async () => server?.stop());
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  const mitigate = (...extra: string[]) =>
    runCli([
      'mitigate',
      '--mysql',
      server.rootUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--yes',
      '--transcript',
      join(mkdtempSync(join(tmpdir(), 'poolctl-settle-')), 't.jsonl'),
      ...extra,
    ]);

  it('clients that reconnect at once: critical 2s after the kill, exit 4, the refill named', async () => {
    const clients = await reconnectingClients(server.appUrl, { count: CLIENTS });
    rig = clients;
    await sleep(AGE_MS);
    const r = await mitigate('--output', 'json');
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe('critical');
    const [action] = report.actions;
    expect(
      action.results.filter((x: { outcome: string }) => x.outcome === 'terminated'),
    ).toHaveLength(CLIENTS);
    expect(clients.reconnects()).toBeGreaterThanOrEqual(CLIENTS);
    expect(action.settle).toMatchObject({
      afterS: 2,
      connectionsLeft: 0,
      connectionsAfter: CLIENTS,
      newConnections: CLIENTS,
    });
    expect(action.after.connections).toBe(CLIENTS);
    expect(report.findings.map((f: { id: string }) => f.id)).toContain('refilled-after-kill');
  });

  it('clients that stay gone: healthy 2s after the kill, exit 0; the human output says when', async () => {
    rig = await holdMysqlSessions(server.appUrl, { sleep: CLIENTS });
    await sleep(AGE_MS);
    const r = await mitigate('--no-color');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${CLIENTS} terminated`);
    expect(r.stdout).toMatch(
      /2s after the kill: Utilization 96\.7% → 0(\.0)?% \(29 → 0 connections/,
    );
    expect(r.stdout).not.toContain('new connections within');
  });
});
