import fs from 'node:fs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions } from '../helpers/mysql-sessions.js';

async function connect(url: string): Promise<mysql.Connection> {
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 5_000 });
  conn.on('error', () => undefined);
  return conn;
}

async function connectErrno(url: string): Promise<number | undefined> {
  try {
    const conn = await connect(url);
    await conn.end();
  } catch (error) {
    return (error as { errno?: number }).errno;
  }
  throw new Error(`expected ${url} to be refused`);
}

describe('test rig: a throwaway MariaDB', () => {
  let server: MariaDBServer | undefined;
  let small: MariaDBServer | undefined;

  beforeAll(async () => {
    [server, small] = await Promise.all([
      startMariaDB(),
      startMariaDB({ maxConnections: 10, performanceSchema: true }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.stop(), small?.stop()]);
  });

  it('is ready when started: both servers answer at once', async () => {
    // Readiness, not speed: start-up time on a loaded machine belongs in bench/, not in a test.
    for (const s of [server!, small!]) {
      const conn = await connect(s.rootUrl);
      try {
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT 1 AS ready');
        expect(rows[0]).toEqual({ ready: 1 });
      } finally {
        await conn.end();
      }
    }
  });

  it('gives app a password, appdb with orders, and no global privileges', async () => {
    const conn = await connect(server!.appUrl);
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT CURRENT_USER() AS who, DATABASE() AS db, (SELECT COUNT(*) FROM orders) AS orders',
      );
      expect(rows[0]).toEqual({ who: 'app@%', db: 'appdb', orders: 5 });
      const [grants] = await conn.query<mysql.RowDataPacket[]>('SHOW GRANTS');
      const text = grants.map((g) => Object.values(g)[0]).join('\n');
      expect(text).toMatch(/GRANT USAGE ON \*\.\* TO `app`@`%`/);
      expect(text).not.toMatch(/SUPER|PROCESS|CONNECTION ADMIN/);
    } finally {
      await conn.end();
    }
    expect(await connectErrno(server!.url('app', 'not-the-password', 'appdb'))).toBe(1045);
    expect(await connectErrno(server!.url('root', ''))).toBe(1045);
  });

  it('gives root SUPER, a URL and the client', async () => {
    const conn = await connect(server!.rootUrl);
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM information_schema.USER_PRIVILEGES
          WHERE GRANTEE = '''root''@''127.0.0.1''' AND PRIVILEGE_TYPE IN ('SUPER', 'PROCESS')`,
      );
      expect(rows[0]!.n).toBe(2);
    } finally {
      await conn.end();
    }
    // Stock settings, as MariaDB ships: performance_schema OFF unless a test turns it on.
    expect((await server!.sql('SELECT @@max_connections, @@performance_schema;')).trim()).toBe(
      '30\t0',
    );
    expect((await small!.sql('SELECT @@performance_schema;')).trim()).toBe('1');
    expect(server!.version).toMatch(/MariaDB/);
  });

  it('holds sleeping, open-transaction and long sessions with program names', async () => {
    const held = await holdMysqlSessions(small!.appUrl, { sleep: 3, openTx: 2, long: 2 });
    try {
      expect(held.ids).toHaveLength(7);
      const out = await small!.sql(`
        SELECT p.ID, p.COMMAND, (t.trx_mysql_thread_id IS NOT NULL) AS in_trx, a.ATTR_VALUE
        FROM information_schema.PROCESSLIST p
        LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
        LEFT JOIN performance_schema.session_connect_attrs a
          ON a.PROCESSLIST_ID = p.ID AND a.ATTR_NAME = 'program_name'
        WHERE p.USER = 'app' ORDER BY p.ID;`);
      const rows = out
        .trim()
        .split('\n')
        .map((l) => l.split('\t'));
      const byId = new Map(
        rows.map(([id, command, inTrx, name]) => [Number(id), { command, inTrx, name }]),
      );
      for (const id of held.byKind.sleep)
        expect(byId.get(id)).toMatchObject({ command: 'Sleep', inTrx: '0' });
      for (const id of held.byKind.openTx)
        expect(byId.get(id)).toMatchObject({ command: 'Sleep', inTrx: '1' });
      for (const id of held.byKind.long)
        expect(byId.get(id)).toMatchObject({ command: 'Query', inTrx: '0' });
      expect(new Set(rows.map((r) => r[3]))).toEqual(new Set(['api', 'worker', 'batch']));
    } finally {
      await held.close();
    }
    // close() killed the SLEEP(3600)s: nothing of app's is left.
    await expect
      .poll(async () =>
        (
          await small!.sql(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'app';",
          )
        ).trim(),
      )
      .toBe('0');
  });

  it('refuses the 11th ordinary connection with 1040 and lets one SUPER connection in', async () => {
    const held = await holdMysqlSessions(small!.appUrl, { sleep: 10 });
    const roots: mysql.Connection[] = [];
    try {
      await expect(holdMysqlSessions(small!.appUrl, { sleep: 1 })).rejects.toMatchObject({
        errno: 1040,
      });
      roots.push(await connect(small!.rootUrl)); // the extra connection
      expect(await connectErrno(small!.rootUrl)).toBe(1040); // only one
    } finally {
      for (const c of roots) await c.end();
      await held.close();
    }
  });

  it('removes its directory on stop', async () => {
    const other = await startMariaDB();
    const dir = other.dataDir.replace(/\/data$/, '');
    expect(fs.existsSync(dir)).toBe(true);
    await other.stop();
    expect(fs.existsSync(dir)).toBe(false);
    await other.stop(); // twice is fine
    expect(await connectErrno(other.rootUrl)).toBeDefined();
  });
});
