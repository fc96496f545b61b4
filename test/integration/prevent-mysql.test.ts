import { expect } from 'vitest';
import { startMariaDB } from '../helpers/mariadb-server.js';
import { holdMysqlSessions } from '../helpers/mysql-sessions.js';
import { describePrevent, type PreventReport } from '../helpers/prevent-cases.js';

describePrevent({
  name: 'MariaDB',
  start: () => startMariaDB({ maxConnections: 40 }),
  urlFlag: '--mysql',
  // SET GLOBAL needs SUPER: root applies, the application's account checks.
  applyUrl: (server) => server.rootUrl,
  stockFindings: [
    'missing-statement-timeout',
    'missing-idle-in-transaction-timeout',
    'wait-timeout-long',
  ],
  statementMessage: /^max_statement_time is 0/,
  // An account without SELECT on performance_schema is told the grant that fixes it.
  nPlusOneUnreadable: /could not be read: .*GRANT SELECT ON `performance_schema`/,
  async checkMore(_result, _report, { server, prevent }) {
    // As root it reads, and MariaDB ships performance_schema=OFF: said so.
    const root = JSON.parse((await prevent(server().rootUrl, '--check')).stdout) as PreventReport;
    expect(root.root_causes_unchecked).toEqual([
      expect.objectContaining({ id: 'n-plus-one', reason: expect.stringMatching(/OFF/) }),
    ]);
  },
  settings: { statement: 'max_statement_time', idle: 'idle_transaction_timeout' },
  readSetting: async (server, name) => (await server.sql(`SELECT @@GLOBAL.${name}`)).trim(),
  applied: { statement: '30.000000', idle: '30' },
  drill: {
    hold: (server) => holdMysqlSessions(server.appUrl, { sleep: 3, openTx: 2 }),
    waitMs: 2100,
    // performance_schema is OFF: the account names the application.
    url: (server) => server.rootUrl,
    leakApp: 'app',
    txApp: 'app',
  },
});
