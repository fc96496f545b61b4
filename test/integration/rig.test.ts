import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { holdSessions } from '../helpers/sessions.js';

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

async function connectError(url: string): Promise<{ code?: string; message: string }> {
  const client = await connect(url).then(
    (c) => c,
    (error: { code?: string; message: string }) => error,
  );
  if (client instanceof pg.Client) {
    await client.end();
    throw new Error(`expected ${url} to be refused`);
  }
  return client;
}

describe('test rig: a throwaway PostgreSQL', () => {
  let server: PgServer | undefined;
  let small: PgServer | undefined;

  beforeAll(async () => {
    [server, small] = await Promise.all([
      startPostgres(),
      startPostgres({ maxConnections: 10, superuserReservedConnections: 3 }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.stop(), small?.stop()]);
  });

  it('authenticates app with a scram-sha-256 password over TCP', async () => {
    const client = await connect(server!.appUrl);
    try {
      const { rows } = await client.query<{ who: string; superuser: string; db: string }>(
        `SELECT current_user AS who, current_setting('is_superuser') AS superuser,
                current_database() AS db`,
      );
      expect(rows[0]).toEqual({ who: 'app', superuser: 'off', db: 'appdb' });
      const orders = await client.query('SELECT id, status FROM orders ORDER BY id');
      expect(orders.rowCount).toBeGreaterThan(0);
    } finally {
      await client.end();
    }

    const stored = await server!.psql(
      `SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'`,
    );
    expect(stored.trim()).toBe('SCRAM-SHA-256$');
    const hba = await server!.psql(
      `SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'`,
    );
    expect(hba.trim()).toBe('scram-sha-256');
  });

  it('refuses a wrong password with SQLSTATE 28P01', async () => {
    const error = await connectError(server!.url('app', 'not-the-password', 'appdb'));
    expect(error.code).toBe('28P01');
  });

  it('gives the superuser its own URL and psql', async () => {
    const client = await connect(server!.superuserUrl);
    try {
      const { rows } = await client.query<{ on: string }>(
        `SELECT current_setting('is_superuser') AS on`,
      );
      expect(rows[0]!.on).toBe('on');
    } finally {
      await client.end();
    }
    expect(await server!.psql('SHOW max_connections')).toBe('30\n');
    await expect(server!.psql('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
  });

  it('holds idle, idle-in-transaction and long sessions under api/worker/batch', async () => {
    const held = await holdSessions(server!.appUrl, { idle: 5, idleInTx: 3, long: 2 });
    try {
      expect(held.pids).toHaveLength(10);
      expect(held.byKind.idle).toHaveLength(5);
      expect(held.byKind.idleInTx).toHaveLength(3);
      expect(held.byKind.long).toHaveLength(2);

      const out = await server!.psql(
        `SELECT pid, state, application_name, regexp_replace(query, '\\s+', ' ', 'g')
           FROM pg_stat_activity
          WHERE usename = 'app' ORDER BY pid`,
      );
      const rows = out
        .trim()
        .split('\n')
        .map((line) => line.split('|'))
        .map(([pid, state, app, query]) => ({ pid: Number(pid), state, app, query }));
      const stateOf = new Map(rows.map((r) => [r.pid, r.state]));

      expect(rows).toHaveLength(10);
      expect(held.byKind.idle.map((p) => stateOf.get(p))).toEqual(Array(5).fill('idle'));
      expect(held.byKind.idleInTx.map((p) => stateOf.get(p))).toEqual(
        Array(3).fill('idle in transaction'),
      );
      expect(held.byKind.long.map((p) => stateOf.get(p))).toEqual(['active', 'active']);
      expect(rows.filter((r) => r.state === 'active').map((r) => r.query)).toEqual(
        Array(2).fill('SELECT pg_sleep(3600)'),
      );
      expect(new Set(rows.map((r) => r.app))).toEqual(new Set(['api', 'worker', 'batch']));
    } finally {
      await held.close();
    }

    // close() frees the slots, the long sessions' included, and may be called again.
    await held.close();
    const left = await server!.psql(`SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'`);
    expect(left.trim()).toBe('0');
  });

  it('refuses app with SQLSTATE 53300 once the ordinary slots are full, but not the superuser', async () => {
    const ordinary = 10 - 3;
    const held = await holdSessions(small!.appUrl, { idle: ordinary });
    try {
      const error = await connectError(small!.appUrl);
      expect(error.code).toBe('53300');

      const client = await connect(small!.superuserUrl);
      await client.end();

      // holdSessions reports the refusal itself, after closing what it opened.
      await expect(holdSessions(small!.appUrl, { idle: 1 })).rejects.toMatchObject({
        code: '53300',
      });
    } finally {
      await held.close();
    }
  });

  it('stop() is idempotent and removes the data directory', async () => {
    const extra = await startPostgres();
    const stopping = extra.stop();
    await Promise.all([stopping, extra.stop()]);
    expect(fs.existsSync(extra.dataDir)).toBe(false);
    await expect(connect(extra.appUrl)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
