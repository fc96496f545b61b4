import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions } from '../helpers/mysql-sessions.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  findings: { id: string; severity: string; message: string }[];
  actions: { id: string; executed: boolean; setting?: Record<string, unknown> }[];
  root_causes: { id: string; evidence: string; application?: string }[];
  root_causes_unchecked: { id: string; reason: string }[];
}

describe('prevent on MariaDB', () => {
  let server: MariaDBServer;
  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 40 });
  });
  afterAll(async () => server?.stop());

  const prevent = (url: string, ...args: string[]) => runCli(['prevent', '--mysql', url, ...args]);

  it('--check exits 4 on a stock server: no statement or idle-transaction limit', async () => {
    const result = await prevent(server.appUrl, '--check');
    expect(result.code).toBe(4);
    const report = JSON.parse(result.stdout) as Report;
    const ids = report.findings.map((f) => f.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'missing-statement-timeout',
        'missing-idle-in-transaction-timeout',
        'wait-timeout-long',
      ]),
    );
    expect(report.findings.find((f) => f.id === 'missing-statement-timeout')?.message).toMatch(
      /^max_statement_time is 0/,
    );
    // An account without SELECT on performance_schema: the N+1 check says it could not read,
    // and the grant that fixes it, not "no N+1".
    expect(report.root_causes_unchecked).toEqual([
      expect.objectContaining({
        id: 'n-plus-one',
        reason: expect.stringMatching(/could not be read: .*GRANT SELECT ON `performance_schema`/),
      }),
    ]);
    // As root it reads, and MariaDB ships performance_schema=OFF: said so.
    const root = JSON.parse((await prevent(server.rootUrl, '--check')).stdout) as Report;
    expect(root.root_causes_unchecked).toEqual([
      expect.objectContaining({ id: 'n-plus-one', reason: expect.stringMatching(/OFF/) }),
    ]);
  });

  it('names the leak and the open transactions after a drill', async () => {
    const held = await holdMysqlSessions(server.appUrl, { sleep: 3, openTx: 2 });
    try {
      await new Promise((r) => setTimeout(r, 2100));
      const result = await prevent(
        server.rootUrl,
        '--set',
        'leak_idle_after=1s',
        '--set',
        'idle_in_tx_after=1s',
        '--output',
        'json',
      );
      const report = JSON.parse(result.stdout) as Report;
      expect(report.root_causes).toContainEqual(
        expect.objectContaining({ id: 'connection-leak', application: 'app' }),
      );
      expect(report.root_causes).toContainEqual(
        expect.objectContaining({ id: 'long-transaction', application: 'app' }),
      );
    } finally {
      await held.close();
    }
  });

  it('--apply both fixes with --yes sets the GLOBAL values; --check then exits 0', async () => {
    const applied = await prevent(
      server.rootUrl,
      '--apply',
      'statement-timeout',
      '--apply',
      'idle-in-transaction-timeout',
      '--yes',
      '--output',
      'json',
    );
    const report = JSON.parse(applied.stdout) as Report;
    expect(report.actions.map((a) => [a.id, a.executed, a.setting])).toEqual([
      [
        'statement-timeout',
        true,
        { name: 'max_statement_time', current: '0', next: '30', after: '30' },
      ],
      [
        'idle-in-transaction-timeout',
        true,
        { name: 'idle_transaction_timeout', current: '0', next: '30', after: '30' },
      ],
    ]);
    expect((await server.sql('SELECT @@GLOBAL.idle_transaction_timeout')).trim()).toBe('30');
    const check = await prevent(server.appUrl, '--check');
    expect(check.code).toBe(0);
  });
});
