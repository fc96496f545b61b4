import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase } from '../../src/targets/connect.js';
import { resolveDatabaseTarget } from '../../src/targets/resolve.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';

// A phase run straight through reads PostgreSQL's sessions once: its steps share one transaction,
// and pg_stat_activity is a copy taken at its first use in a transaction. So the steps agree with
// one another (the states add up to the utilization's count), and at 1,000 sessions the server
// copies its session table once per phase instead of once per step (bench/README.md). A failed
// step ends that transaction; the steps after it still run, in a new one.

const RUNBOOK = 'test/fixtures/runbooks/postgres-one-snapshot/one-snapshot.yaml';

interface Report {
  steps: { id: string; status: string; rows?: Record<string, unknown>[]; error?: string }[];
}

describe('PostgreSQL: one view of the sessions per phase', () => {
  let server: PgServer;
  let watcher: pg.Client;
  let late: pg.Client | undefined;

  beforeAll(async () => {
    server = await startPostgres();
    watcher = new pg.Client({ connectionString: server.superuserUrl });
    await watcher.connect();
  });
  afterAll(async () => {
    await late?.end().catch(() => {});
    await watcher?.end().catch(() => {});
    await server?.stop();
  });

  it('a session opened mid-phase is not seen until a failed step ends the shared view', async () => {
    const run = runCli([
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--runbook',
      RUNBOOK,
      '--output',
      'json',
    ]);
    // Wait until poolctl's pause step runs, then open the late session behind its back.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { rows } = await watcher.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'poolctl' AND state = 'active' AND query LIKE '%pg_sleep(1.5)%'`,
      );
      if ((rows[0] as { n: number }).n > 0) break;
      if (Date.now() > deadline) throw new Error('poolctl never reached its pause step');
      await new Promise((r) => setTimeout(r, 20));
    }
    late = new pg.Client({
      connectionString: server.superuserUrl,
      application_name: 'poolctl-test-late',
    });
    await late.connect();

    const result = await run;
    expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
    const report = JSON.parse(result.stdout) as Report;
    const step = (id: string) => report.steps.find((s) => s.id === id)!;
    const lateCount = (id: string) => step(id).rows?.[0]?.late;

    expect(step('late-before')).toMatchObject({ status: 'ok' });
    expect(lateCount('late-before')).toBe(0);
    // The same phase, the same view: the session opened during the pause is not there yet.
    expect(step('late-again')).toMatchObject({ status: 'ok' });
    expect(lateCount('late-again')).toBe(0);
    // A failed step ends the shared view, and takes nothing after it down with it.
    expect(step('fails')).toMatchObject({ status: 'failed', error: 'division by zero' });
    expect(step('late-after-failure')).toMatchObject({ status: 'ok' });
    expect(lateCount('late-after-failure')).toBe(1);
  });

  it("refuses a kill's calls inside the shared view, whose copy of the sessions would not change", async () => {
    const target = await connectDatabase(
      await resolveDatabaseTarget(
        { pg: server.superuserUrl, connectTimeoutMs: 5000, statementTimeoutMs: 5000 },
        {},
      ),
    );
    try {
      expect(target.readTogether).toBeDefined();
      await expect(
        target.readTogether!(async () => {
          await target.query('SELECT count(*) FROM pg_stat_activity', []);
          return target.stillThere([], 'terminate');
        }),
      ).rejects.toThrow('internal: stillThere() called inside readTogether()');
      // The connection goes on working, outside the shared view.
      expect(await target.query('SELECT 1 AS one', [])).toEqual([{ one: 1 }]);
    } finally {
      await target.close();
    }
  });
});
