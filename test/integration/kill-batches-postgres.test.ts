import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunbookById } from '../../src/runbook/bundled.js';
import { bindParameters, resolveParameters } from '../../src/runbook/params.js';
import { executeKill, type VictimResult } from '../../src/safety/kill.js';
import { connectDatabase } from '../../src/targets/connect.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';
import { sleep } from '../helpers/expect.js';

// The kill reports each batch's outcomes as soon as its statement returns, then the confirmed
// ones, so its caller can record them as they come (the transcript's `outcome` events); a batch
// whose statement fails is reported as unknown and the batches after it as never signalled.

describe('a kill in batches reports its outcomes as they come (PostgreSQL)', () => {
  let server: PgServer;
  let held: HeldSessions;
  let admin: pg.Client;

  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 40 });
    admin = new pg.Client({ connectionString: server.superuserUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await held?.close();
    await admin?.end();
    await server?.stop();
  });

  async function plan() {
    held = await holdSessions(server.appUrl, { idle: 6, appNames: ['api'] });
    await sleep(1200);
    const target = await connectDatabase({
      engine: 'postgres',
      host: server.host,
      port: server.port,
      user: 'postgres',
      password: decodeURIComponent(new URL(server.superuserUrl).password),
      database: 'postgres',
      connectTimeoutMs: 5000,
      statementTimeoutMs: 10000,
      from: 'test',
    });
    const runbook = await loadRunbookById('postgres/pool-exhausted');
    const action = runbook.actions.find((a) => a.id === 'kill-idle')!;
    if (action.kind !== 'terminate') throw new Error('kill-idle is not a terminate step');
    const values = resolveParameters(runbook.parameters, { kill_idle_after: '1s' }, runbook.id);
    const params = bindParameters(action.params, values);
    const protection = { users: [], applications: ['test-admin'], includeSuperusers: false };
    const candidates = await target.candidates({ sql: action.sql, params });
    const victims = candidates.filter((s) => held.pids.includes(s.pid));
    expect(victims).toHaveLength(6);
    return { target, sql: action.sql, params, protection, victims };
  }

  it('one outcome report per batch, then the confirmation', async () => {
    const p = await plan();
    const reports: VictimResult[][] = [];
    try {
      const report = await executeKill({
        ...p,
        mode: 'terminate',
        batchSize: 2,
        onResults: (r) => reports.push(r),
      });
      expect(report.results.map((r) => r.outcome)).toEqual(Array(6).fill('terminated'));
    } finally {
      await p.target.close();
    }
    expect(reports.map((r) => r.map((x) => x.outcome))).toEqual([
      ['signalled', 'signalled'],
      ['signalled', 'signalled'],
      ['signalled', 'signalled'],
      Array(6).fill('terminated'),
    ]);
    // Each batch's report names exactly that batch's victims.
    const pids = (xs: { pid: number }[]) => xs.map((x) => x.pid).sort((a, b) => a - b);
    for (let b = 0; b < 3; b++) {
      expect(pids(reports[b]!)).toEqual(pids(p.victims.slice(b * 2, b * 2 + 2)));
    }
  });

  it('a statement that fails (poolctl’s session killed): unknown for its batch, spared after', async () => {
    const p = await plan();
    // Someone terminates poolctl's own session before the kill.
    await admin.query('SELECT pg_terminate_backend($1, 5000)', [p.target.info.ownSessionId]);
    const reports: VictimResult[][] = [];
    let err: unknown;
    try {
      await executeKill({
        ...p,
        mode: 'terminate',
        batchSize: 2,
        onResults: (r) => reports.push(r),
      });
    } catch (e) {
      err = e;
    } finally {
      await p.target.close().catch(() => {});
    }
    expect(String(err)).toMatch(/server closed poolctl's connection/);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.map((r) => r.outcome)).toEqual([
      'unknown',
      'unknown',
      'spared',
      'spared',
      'spared',
      'spared',
    ]);
    expect(reports[0]![0]!.reason).toMatch(/^the kill statement failed: /);
    expect(reports[0]![2]!.reason).toBe('not signalled: the kill stopped at an error');
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [p.victims.map((v) => v.pid)],
    );
    expect(rows[0]!.n).toBe(6);
  });
});
