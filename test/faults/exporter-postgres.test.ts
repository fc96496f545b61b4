import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, sorted } from '../helpers/expect.js';
import { freePort } from '../helpers/free-port.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// Fault suite: the REAL prometheus-postgres-exporter (Debian's) against a real server. It keeps
// idle connections open between scrapes, and sets no application_name of its own
// (prometheus-community/postgres_exporter#352): the default protection by application name
// (protect_apps_default) spares them only when its DSN names it, as the README tells.

const EXPORTER = '/usr/bin/prometheus-postgres-exporter';

interface Action {
  results: { pid: number; outcome: string }[];
  spared: { pid: number; reason: string }[];
}

describe('the real postgres_exporter during a kill-idle', () => {
  let server: PgServer;
  let exporter: ChildProcess | undefined;
  let held: HeldSessions | undefined;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 40 });
  });
  afterEach(async () => {
    exporter?.kill();
    exporter = undefined;
    await held?.close();
    held = undefined;
  });
  afterAll(async () => server?.stop());

  /** Starts the exporter with `dsnQuery` on its DSN, scrapes once, returns its sessions' pids. */
  async function startExporter(dsnQuery: string): Promise<{ pids: number[]; apps: string[] }> {
    const u = new URL(server.superuserUrl);
    const port = await freePort();
    exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], {
      env: {
        DATA_SOURCE_NAME: `postgresql://${u.username}:${u.password}@127.0.0.1:${u.port}/postgres?sslmode=disable${dsnQuery}`,
      },
      stdio: 'ignore',
    });
    let body = '';
    for (let i = 0; i < 100 && !body.includes('pg_up 1'); i++) {
      await sleep(100);
      body = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
    }
    expect(body).toContain('pg_up 1');
    const rows = await server.psql(
      "SELECT pid || '|' || application_name FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename = 'postgres' AND application_name NOT IN ('psql', 'poolctl')",
    );
    const sessions = rows.split('\n').filter(Boolean);
    return {
      pids: sessions.map((l) => Number(l.split('|')[0])),
      apps: [...new Set(sessions.map((l) => l.split('|')[1] ?? ''))],
    };
  }

  async function killIdle(): Promise<Action> {
    const result = await runCli([
      'mitigate',
      '--pg',
      server.superuserUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--include-superusers',
      '--yes',
      '--output',
      'json',
    ]);
    expect(result.stderr).not.toMatch(/internal error/);
    return (JSON.parse(result.stdout) as { actions: Action[] }).actions[0]!;
  }

  it('named in its DSN (application_name=postgres_exporter), its idle sessions are spared by default', async () => {
    const exported = await startExporter('&application_name=postgres_exporter');
    expect(exported.pids.length).toBeGreaterThan(0);
    expect(exported.apps).toEqual(['postgres_exporter']);
    held = await holdSessions(server.appUrl, { idle: 3, appNames: ['api'] });
    await sleep(1200);
    const action = await killIdle();
    const killed = sorted(
      action.results.filter((r) => r.outcome === 'terminated').map((r) => r.pid),
    );
    expect(killed).toEqual(sorted(held.pids));
    const reasons = Object.fromEntries(action.spared.map((s) => [s.pid, s.reason]));
    for (const pid of exported.pids) expect(reasons[pid]).toMatch(/postgres_exporter/);
  });

  it('as shipped (no application_name), it is indistinguishable from the leak: why the README says to name it', async () => {
    const exported = await startExporter('');
    expect(exported.pids.length).toBeGreaterThan(0);
    expect(exported.apps).toEqual(['']);
    await sleep(1200);
    const action = await killIdle();
    const killed = action.results.filter((r) => r.outcome === 'terminated').map((r) => r.pid);
    for (const pid of exported.pids) expect(killed).toContain(pid);
  });
});
