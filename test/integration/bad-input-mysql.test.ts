import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { expectOneLine } from '../helpers/expect.js';
import { runCli } from '../helpers/run-cli.js';

describe('bad MySQL input gets one line and the documented exit code', () => {
  let server: MariaDBServer;
  let silent: net.Server;
  let silentPort = 0;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    server = await startMariaDB();
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
    const url = `mysql://app:not-the-password-xyz@127.0.0.1:${server.port}/appdb`;
    const result = await runCli(['diagnose', '--mysql', url]);
    expectOneLine(result, 3, 'access denied for user "app"', 'wrong password');
    expect(result.stderr).not.toContain('not-the-password-xyz');
  });

  it('wrong MYSQL_PWD: exit 3 naming where the settings came from', async () => {
    const result = await runCli(['diagnose'], {
      env: {
        MYSQL_HOST: '127.0.0.1',
        MYSQL_TCP_PORT: String(server.port),
        MYSQL_PWD: 'not-the-password-xyz',
        USER: 'app',
      },
    });
    expectOneLine(result, 3, 'access denied for user "app"', 'MYSQL_HOST');
    expect(result.stderr).not.toContain('not-the-password-xyz');
  });

  it('unknown database: exit 3', async () => {
    const url = new URL(server.rootUrl);
    url.pathname = '/no_such_db';
    const result = await runCli(['diagnose', '--mysql', url.href]);
    expectOneLine(result, 3, 'database "no_such_db" does not exist');
    expect(result.stderr).not.toContain(url.password);
  });

  it('refused port: exit 3', async () => {
    const port = await freePort();
    const result = await runCli(['diagnose', '--mysql', `mysql://app@127.0.0.1:${port}/appdb`]);
    expectOneLine(result, 3, `connection refused at 127.0.0.1:${port}`);
  });

  it('black-holed port: exit 3 after the connect timeout', async () => {
    const result = await runCli([
      'diagnose',
      '--mysql',
      `mysql://app:pw@127.0.0.1:${silentPort}/appdb`,
      '--connect-timeout',
      '1s',
    ]);
    expectOneLine(result, 3, `no answer from 127.0.0.1:${silentPort} within 1s`);
    expect(result.durationMs).toBeLessThan(5000);
  });

  it('unknown host: exit 3', async () => {
    const result = await runCli(['diagnose', '--mysql', 'mysql://app@no-such-host.invalid/appdb']);
    expectOneLine(result, 3, 'cannot resolve host "no-such-host.invalid"');
  });

  it('bad URLs and two targets: exit 2', async () => {
    expectOneLine(
      await runCli(['diagnose', '--mysql', 'postgres://app@127.0.0.1/appdb']),
      2,
      '--mysql: expected a mysql:// or mariadb:// URL',
    );
    expectOneLine(
      await runCli(['diagnose', '--mysql', 'mysql://app@127.0.0.1:0/appdb']),
      2,
      '--mysql port: expected a port number',
    );
    expectOneLine(
      await runCli(['diagnose', '--mysql', 'mysql://app@127.0.0.1:99999/appdb']),
      2,
      '--mysql: not a valid connection URL',
    );
    expectOneLine(
      await runCli(['diagnose', '--mysql', server.rootUrl, '--pg', 'postgres://x@127.0.0.1/x']),
      2,
      'give one database target',
    );
    expectOneLine(
      await runCli(['diagnose'], { env: { DATABASE_URL: 'redis://127.0.0.1:6379' } }),
      2,
      'mysql://',
    );
    expectOneLine(
      await runCli(['diagnose'], { env: { MYSQL_HOST: '127.0.0.1', MYSQL_TCP_PORT: 'x' } }),
      2,
      'MYSQL_TCP_PORT',
    );
  });

  describe('a Unix socket', () => {
    // root, with every grant: the account's view is not what these tests are about.
    const password = () => decodeURIComponent(new URL(server.rootUrl).password);

    it('?socket=PATH connects over the socket, whatever the URL says of host and port', async () => {
      // Port 1 refuses TCP: only the socket can answer.
      for (const url of [
        `mysql://root:${password()}@127.0.0.1:1/appdb?socket=${server.socket}`,
        `mysql://root:${password()}@/appdb?socket=${encodeURIComponent(server.socket)}`,
      ]) {
        const result = await runCli(['diagnose', '--mysql', url, '--output', 'json']);
        expect(result.code, result.stderr).toBe(0);
        const doc = JSON.parse(result.stdout) as { targets: { label: string }[] };
        expect(doc.targets[0]!.label).toContain(encodeURIComponent(server.socket));
      }
    });

    it('MYSQL_UNIX_PORT, with a host-less URL or with the environment alone', async () => {
      const env = { MYSQL_UNIX_PORT: server.socket, MYSQL_PWD: password(), USER: 'root' };
      for (const args of [['--mysql', 'mysql://root@/appdb'], []]) {
        const result = await runCli(['diagnose', ...args, '--output', 'json'], { env });
        expect(result.code, result.stderr).toBe(0);
      }
    });

    it('a socket nobody listens on: exit 3 naming it', async () => {
      const result = await runCli([
        'diagnose',
        '--mysql',
        'mysql://app@/appdb?socket=/nonexistent/mysqld.sock',
      ]);
      expectOneLine(result, 3, 'no server listens on the socket /nonexistent/mysqld.sock');
    });
  });
});
