import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvents } from '../helpers/expect.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdMysqlSessions } from '../helpers/mysql-sessions.js';
import { holdSessions } from '../helpers/sessions.js';
import { startStallProxy, type StallProxy } from '../helpers/stall-proxy.js';

// Fault suite: a server that accepts the connection, answers the first queries and then stops
// answering. Every command must end with exit 3 within the connect timeout plus the statement
// timeout (here 2 s + 2 s), with one line naming the target; the bound below adds 5 s for CI.
const CONNECT = '2s';
const STATEMENT = '2s';
const BOUND_MS = 2_000 + 2_000 + 5_000;
const timeouts = ['--connect-timeout', CONNECT, '--statement-timeout', STATEMENT];

/** The server's URL with its port replaced by the proxy's. */
function through(url: string, proxy: StallProxy): string {
  const u = new URL(url);
  u.host = `${proxy.host}:${proxy.port}`;
  return u.toString();
}

const commands: [string, string[]][] = [
  ['diagnose', ['diagnose']],
  ['diagnose --output json', ['diagnose', '--output', 'json']],
  ['verify', ['verify']],
  ['verify --wait 60s', ['verify', '--wait', '60s', '--interval', '1s']],
  ['mitigate --action kill-idle --yes', ['mitigate', '--action', 'kill-idle', '--yes']],
];

const engines: {
  name: string;
  flag: string;
  start: () => Promise<{
    url: string;
    host: string;
    port: number;
    /** Holds `n` idle sessions of an ordinary account until closed. */
    hold: (n: number) => Promise<{ close(): Promise<void> }>;
    stop: () => Promise<void>;
  }>;
  // A statement every command sends after connecting, and the server-info query does not.
  midRun: RegExp;
  // The kill statement itself.
  kill: RegExp;
}[] = [
  {
    name: 'PostgreSQL',
    flag: '--pg',
    start: async () => {
      const s: PgServer = await startPostgres();
      return {
        url: s.superuserUrl,
        host: s.host,
        port: s.port,
        hold: (n) => holdSessions(s.appUrl, { idle: n }),
        stop: () => s.stop(),
      };
    },
    midRun: /pg_stat_activity/,
    kill: /pg_terminate_backend/,
  },
  {
    name: 'MariaDB',
    flag: '--mysql',
    start: async () => {
      const s: MariaDBServer = await startMariaDB();
      return {
        url: s.rootUrl,
        host: s.host,
        port: s.port,
        hold: (n) => holdMysqlSessions(s.appUrl, { sleep: n }),
        stop: () => s.stop(),
      };
    },
    midRun: /processlist/i,
    kill: /KILL/,
  },
];

describe.each(engines)('a $name server that stops answering', ({ flag, start, midRun, kill }) => {
  let server: Awaited<ReturnType<typeof start>>;
  const proxies: StallProxy[] = [];

  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await server?.stop();
  });

  async function proxy(): Promise<StallProxy> {
    const p = await startStallProxy({ host: server.host, port: server.port });
    proxies.push(p);
    return p;
  }

  it.each(commands)('mid-run: %s exits 3 within the bound', async (_name, args) => {
    const p = await proxy();
    p.stallWhenClientSends(midRun);
    const result = await runCli([...args, flag, through(server.url, p), ...timeouts], {
      timeoutMs: 30_000,
    });
    expect(result.code, result.stderr).toBe(3);
    expect(result.durationMs).toBeLessThan(BOUND_MS);
    expect(result.stderr).toMatch(/^poolctl: .*no answer from 127\.0\.0\.1:\d+ within 2s/m);
    expect(result.stderr).toContain('--statement-timeout');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    // The transcript is closed with the exit code.
    const dir = join(result.stateDir, 'poolctl', 'incidents');
    const events = readEvents(join(dir, readdirSync(dir)[0]!));
    expect(events.at(-1)).toMatchObject({ type: 'session.end', exitCode: 3 });
  });

  it('during the kill statement: mitigate --yes exits 3 within the bound', async () => {
    const held = await server.hold(3);
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const p = await proxy();
      p.stallWhenClientSends(kill);
      const result = await runCli(
        [
          'mitigate',
          '--action',
          'kill-idle',
          '--set',
          'kill_idle_after=1s',
          '--yes',
          flag,
          through(server.url, p),
          ...timeouts,
        ],
        { timeoutMs: 30_000 },
      );
      expect(result.code, result.stderr).toBe(3);
      expect(result.durationMs).toBeLessThan(BOUND_MS);
      expect(result.stderr).toMatch(/no answer from 127\.0\.0\.1:\d+ within 2s/);
    } finally {
      await held?.close();
    }
  });

  it('at the handshake: diagnose exits 3 within the connect timeout', async () => {
    const p = await proxy();
    p.stall();
    const result = await runCli(['diagnose', flag, through(server.url, p), ...timeouts], {
      timeoutMs: 30_000,
    });
    expect(result.code, result.stderr).toBe(3);
    expect(result.durationMs).toBeLessThan(2_000 + 5_000);
    expect(result.stderr).toMatch(/no answer from 127\.0\.0\.1:\d+ within 2s/);
  });
});
