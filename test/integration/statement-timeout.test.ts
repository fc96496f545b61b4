import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';

// A statement the server stops at poolctl's own statement timeout is the target's problem (exit 3,
// naming the target, the timeout and the flag that raises it), not an internal error (exit 1).
// The fixture runbooks' candidate queries take 3 s; the timeout is 1 s.

const engines = [
  {
    name: 'PostgreSQL',
    flag: '--pg',
    runbook: 'test/fixtures/runbooks/postgres-slow-candidates/slow.yaml',
    start: async () => {
      const s: PgServer = await startPostgres();
      return { url: s.superuserUrl, stop: () => s.stop() };
    },
  },
  {
    name: 'MariaDB',
    flag: '--mysql',
    runbook: 'test/fixtures/runbooks/mysql-slow-candidates/slow.yaml',
    start: async () => {
      const s: MariaDBServer = await startMariaDB();
      return { url: s.rootUrl, stop: () => s.stop() };
    },
  },
];

describe.each(engines)(
  '$name: a statement stopped at --statement-timeout',
  ({ flag, runbook, start }) => {
    let server: Awaited<ReturnType<typeof start>>;
    beforeAll(async () => {
      server = await start();
    });
    afterAll(async () => server?.stop());

    it.each([[['--dry-run']], [['--dry-run', '--output', 'json']]])(
      'mitigate %j exits 3 with one line naming the target, the timeout and the flag',
      async (extra) => {
        const result = await runCli([
          'mitigate',
          flag,
          server.url,
          '--runbook',
          runbook,
          '--action',
          'slow',
          '--statement-timeout',
          '1s',
          ...extra,
        ]);
        expect(result.code, result.stderr).toBe(3);
        expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
        const line = result.stderr.trim().split('\n').at(-1)!;
        expect(line).toMatch(
          /^poolctl: (postgres|mysql):\/\/.*statement timeout \(1s\).*--statement-timeout/,
        );
        if (extra.includes('json')) {
          const report = JSON.parse(result.stdout) as { error?: { code: string; message: string } };
          expect(report.error?.message).toMatch(/statement timeout \(1s\)/);
        }
      },
    );
  },
);
