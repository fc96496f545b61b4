import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/expect.js';
import { freePort } from '../helpers/free-port.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';

// Fault suite: the REAL prometheus-mysqld-exporter (Debian's) against a stock MariaDB. Its Go
// driver sends no program_name, and performance_schema is OFF anyway, so no application name
// can protect it; what keeps it out of a kill-idle is that it holds no connection between
// scrapes. Measured here, so the README's advice rests on what the exporter does.

const EXPORTER = '/usr/bin/prometheus-mysqld-exporter';

describe('the real mysqld_exporter on a stock MariaDB', () => {
  let server: MariaDBServer;
  let exporter: ChildProcess | undefined;

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 40 });
    // The account mysqld_exporter's README asks for.
    await server.sql(
      "CREATE USER 'exporter'@'%' IDENTIFIED BY 'exporter-pw' WITH MAX_USER_CONNECTIONS 3; GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'%';",
    );
  });
  afterAll(async () => {
    exporter?.kill();
    await server?.stop();
  });

  const exporterSessions = async () =>
    (await server.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'exporter';"))
      .split('\n')
      .filter(Boolean);

  it('connects for a scrape and holds no session between scrapes: nothing for kill-idle to take', async () => {
    const port = await freePort();
    exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], {
      env: { DATA_SOURCE_NAME: `exporter:exporter-pw@tcp(127.0.0.1:${server.port})/` },
      stdio: 'ignore',
    });
    let body = '';
    for (let i = 0; i < 100 && !body.includes('mysql_up 1'); i++) {
      await sleep(100);
      body = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
    }
    expect(body).toContain('mysql_up 1');
    expect(body).toContain('mysql_global_status_threads_connected');
    await sleep(300);
    expect(await exporterSessions()).toEqual([]);
    // performance_schema is OFF on a stock MariaDB: no program_name would be readable anyway.
    expect((await server.sql('SELECT @@performance_schema;')).trim()).toBe('0');
  });
});
