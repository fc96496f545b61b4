import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunbookFile } from '../../src/runbook/loader.js';
import { bindParameters, parseSetFlags, resolveParameters } from '../../src/runbook/params.js';
import type { Runbook } from '../../src/runbook/types.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';

/**
 * The MySQL runbook's raise-max-connections is a database change: its statement binds
 * new_max_connections (never interpolated) and its read reports the setting. Run here the way
 * src/targets/mysql.ts runs a statement with parameters: a server-side prepared statement.
 */
describe('mysql/pool-exhausted raise-max-connections on a real MariaDB', () => {
  let server: MariaDBServer;
  let conn: mysql.Connection;
  let rb: Runbook;

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 30 });
    conn = await mysql.createConnection(server.rootUrl);
    rb = await loadRunbookFile('runbooks/mysql/pool-exhausted.yaml');
  });
  afterAll(async () => {
    await conn?.end();
    await server?.stop();
  });

  it('sets the bound value from --set and reads it back as one setting/value row', async () => {
    const step = rb.actions.find((s) => s.id === 'raise-max-connections');
    if (step?.kind !== 'change' || step.target !== 'database') throw new Error('not a db change');
    const read = async () => (await conn.query(step.readSql))[0];
    expect(await read()).toEqual([{ setting: 'max_connections', value: 30 }]);

    const values = resolveParameters(
      rb.parameters,
      parseSetFlags(['new_max_connections=250'], rb.parameters, rb.id),
    );
    await conn.execute(step.sql, bindParameters(step.params, values));
    expect(await read()).toEqual([{ setting: 'max_connections', value: 250 }]);
  });

  it('why the statement casts: MariaDB refuses a bare bound ? in SET GLOBAL max_connections', async () => {
    await expect(conn.execute('SET GLOBAL max_connections = ?', [200])).rejects.toThrow(
      "Incorrect argument type to variable 'max_connections'",
    );
  });
});
