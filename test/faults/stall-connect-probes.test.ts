import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { runCli } from '../helpers/run-cli.js';
import { startStallProxy, type StallProxy } from '../helpers/stall-proxy.js';

// Fault suite: a MariaDB that stops answering during one of the looks poolctl takes right after
// connecting to learn what it may read (program names, the role tables). Only "you may not read
// this" may be taken as an answer there; no answer at all ends the run with exit 3, naming it,
// and never goes on as if the table were merely unreadable.

let server: MariaDBServer;
const proxies: StallProxy[] = [];

beforeAll(async () => {
  // performance_schema ON: poolctl then looks at its own program name while connecting.
  server = await startMariaDB({ performanceSchema: true });
});
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await server?.stop();
});

describe('a server that stops answering during a connect-time look', () => {
  it.each([
    ['program names', /session_connect_attrs\s+WHERE PROCESSLIST_ID = CONNECTION_ID\(\)/],
    ['role tables', /mysql\.roles_mapping/],
  ])('at the look at %s: diagnose exits 3 with no answer, naming the target', async (_n, at) => {
    const p = await startStallProxy({ host: server.host, port: server.port });
    proxies.push(p);
    p.stallWhenClientSends(at);
    const url = new URL(server.rootUrl);
    url.host = `${p.host}:${p.port}`;
    const result = await runCli(
      [
        'diagnose',
        '--mysql',
        url.toString(),
        '--connect-timeout',
        '2s',
        '--statement-timeout',
        '2s',
      ],
      { timeoutMs: 30_000 },
    );
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(
      /^poolctl: mysql:\/\/.*no answer from 127\.0\.0\.1:\d+ within 2s/m,
    );
    expect(result.stderr).not.toMatch(/closed poolctl's connection|internal error|\n\s+at /);
  });
});
