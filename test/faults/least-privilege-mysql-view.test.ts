import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { runCli } from '../helpers/run-cli.js';

// Without PROCESS, MariaDB shows an account only its own connections: a kill it chose from that
// view would report "nothing to do" on a server full of other accounts' sleeping connections.
describe('a MariaDB account without PROCESS on a server another account fills', () => {
  let server: MariaDBServer;
  let held: HeldMysqlSessions;
  const urls: Record<string, string> = {};

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 20, settings: { performance_schema: 'OFF' } });
    const pw = Object.fromEntries(
      ['filler', 'noprocess'].map((u) => [u, randomBytes(9).toString('hex')]),
    );
    await server.sql(`
      CREATE USER filler@'%' IDENTIFIED BY '${pw.filler}';
      CREATE USER noprocess@'%' IDENTIFIED BY '${pw.noprocess}';
    `);
    for (const u of Object.keys(pw)) urls[u] = server.url(u, pw[u]!);
    held = await holdMysqlSessions(urls.filler!, { sleep: 5 });
    await new Promise((r) => setTimeout(r, 1100));
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  async function alive(ids: number[]): Promise<number> {
    const out = await server.sql(
      `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (${ids.join(',')});`,
    );
    return Number(out.trim().split('\n').at(-1));
  }

  it('mitigate refuses a kill it cannot see to choose, --dry-run too, naming the grant (exit 2)', async () => {
    for (const mode of ['--yes', '--dry-run']) {
      const result = await runCli([
        'mitigate',
        '--mysql',
        urls.noprocess!,
        '--action',
        'kill-idle',
        '--set',
        'kill_idle_after=1s',
        mode,
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("GRANT PROCESS ON *.* TO 'noprocess'@'%';");
      expect(result.stderr).toMatch(/refused, nothing was done/);
    }
    expect(await alive(held.ids)).toBe(5);
  });
});
