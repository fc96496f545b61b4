import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startCli } from '../helpers/run-cli.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { readEvents, sleep } from '../helpers/expect.js';

// Fault suite, MariaDB: a kill of 300 connections cut short by Ctrl-C twice or a SIGKILL leaves
// every connection that is gone named in the transcript (KILLs go one by one here, so the window
// between the first and the last is where a run is most likely to end).

const VICTIMS = 300;

describe('a kill of a few hundred connections cut short (MariaDB)', () => {
  let server: MariaDBServer;
  let admin: mysql.Connection;
  let held: HeldMysqlSessions;

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: VICTIMS + 40 });
    admin = await mysql.createConnection(server.rootUrl);
  });
  afterAll(async () => {
    await admin?.end().catch(() => {});
    await server?.stop();
  });
  beforeEach(async () => {
    held = await holdMysqlSessions(server.appUrl, { sleep: VICTIMS, programNames: ['api'] });
    await sleep(2100); // asleep past kill_idle_after=1s (TIME counts whole seconds)
  });
  afterEach(async () => {
    await held?.close();
  });

  const present = async (): Promise<Set<number>> => {
    const [rows] = await admin.query<mysql.RowDataPacket[]>(
      'SELECT ID AS id FROM information_schema.PROCESSLIST',
    );
    const live = new Set(rows.map((r) => Number(r.id)));
    return new Set(held.ids.filter((id) => live.has(id)));
  };

  async function killInFlight(transcript: string) {
    const started = startCli([
      'mitigate',
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--yes',
      '--mysql',
      server.rootUrl,
      '--transcript',
      transcript,
    ]);
    const { child, exited } = started;
    const deadline = Date.now() + 20_000;
    while ((await present()).size === VICTIMS) {
      if (Date.now() > deadline) throw new Error(`the kill never started: ${started.stderr()}`);
    }
    return { child, exited };
  }

  async function goneButUnnamed(transcript: string) {
    await sleep(1500);
    const left = await present();
    const gone = held.ids.filter((id) => !left.has(id));
    const named = new Set<number>();
    for (const e of readEvents(transcript))
      if (e.type === 'intent' || e.type === 'action')
        for (const v of e.victims as { pid: number }[]) named.add(v.pid);
    return { gone, unnamed: gone.filter((id) => !named.has(id)) };
  }

  it('Ctrl-C twice: exit 130, every connection gone is named', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-fault-')), 'sigint.jsonl');
    const run = await killInFlight(transcript);
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    // 0 only when the whole run (a MariaDB kill of 300 takes ≈ 0.1 s) ended before the signals.
    expect([130, 0]).toContain(await run.exited);
    const { gone, unnamed } = await goneButUnnamed(transcript);
    expect(gone.length).toBeGreaterThan(0);
    expect(unnamed).toEqual([]);
  });

  it('SIGKILL: every connection gone is named', async () => {
    const transcript = join(mkdtempSync(join(tmpdir(), 'poolctl-fault-')), 'sigkill.jsonl');
    const run = await killInFlight(transcript);
    run.child.kill('SIGKILL');
    expect([137, 0]).toContain(await run.exited);
    const { gone, unnamed } = await goneButUnnamed(transcript);
    expect(gone.length).toBeGreaterThan(0);
    expect(unnamed).toEqual([]);
  });
});
