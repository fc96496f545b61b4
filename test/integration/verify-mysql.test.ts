import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions, type HeldMysqlSessions } from '../helpers/mysql-sessions.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  metrics: Record<string, number>;
  findings: { id: string; severity: string; message: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (report: Report) => report.findings.map((f) => f.id);

// A stock MariaDB (performance_schema off, as MariaDB ships) with 20 connections for ordinary
// accounts; root gets in on the extra SUPER connection when they are all taken.
describe('verify on a stock MariaDB', () => {
  let server: MariaDBServer;
  let held: HeldMysqlSessions | undefined;
  const urls: Record<string, string> = {};

  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 20, settings: { performance_schema: 'OFF' } });
    const pw = Object.fromEntries(
      ['filler', 'noprocess', 'process'].map((u) => [u, randomBytes(9).toString('hex')]),
    );
    await server.sql(`
      CREATE USER filler@'%' IDENTIFIED BY '${pw.filler}';
      CREATE USER noprocess@'%' IDENTIFIED BY '${pw.noprocess}';
      CREATE USER process@'%' IDENTIFIED BY '${pw.process}';
      GRANT PROCESS ON *.* TO process@'%';
    `);
    for (const u of Object.keys(pw)) urls[u] = server.url(u, pw[u]!);
  });
  afterEach(async () => {
    await held?.close();
    held = undefined;
  });
  afterAll(async () => server?.stop());

  it('is not recovered on a full server (exit 4) and recovered once it is emptied (exit 0)', async () => {
    held = await holdMysqlSessions(urls.filler!, { sleep: 20 });
    const full = await runCli(['verify', '--mysql', server.rootUrl, '--output', 'json']);
    expect(full.code).toBe(4);
    const report = JSON.parse(full.stdout) as Report;
    expect(report.status).toBe('critical');
    expect(report.metrics).toMatchObject({ connections: 20, utilization_percent: 100 });
    expect(ids(report)).toEqual(['still-full']);

    const human = await runCli(['verify', '--mysql', server.rootUrl]);
    expect(human.code).toBe(4);
    expect(human.stdout).toMatch(/^poolctl verify · /);
    expect(human.stdout).toContain('✖ Not recovered yet: utilization 100.0% (20 of 20)');
    expect(human.stdout).not.toContain('Recovered:');

    await held.close();
    held = undefined;
    const emptied = await runCli(['verify', '--mysql', server.rootUrl, '--output', 'json']);
    expect(emptied.code).toBe(0);
    expect(ids(JSON.parse(emptied.stdout) as Report)).toEqual(['recovered']);
    const ok = await runCli(['verify', '--mysql', server.rootUrl]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('✔ Recovered: utilization 0.0% (0 of 20)');
  });

  it('is not recovered while a statement runs past long_query_after, and does not tick that check', async () => {
    held = await holdMysqlSessions(urls.filler!, { long: 2 });
    await sleep(1100);
    const args = ['verify', '--mysql', server.rootUrl, '--set', 'long_query_after=1s'];
    const json = await runCli([...args, '--output', 'json']);
    expect(json.code).toBe(4);
    expect(ids(JSON.parse(json.stdout) as Report)).toEqual(['recovered', 'still-long-queries']);
    const human = await runCli(args);
    expect(human.code).toBe(4);
    expect(human.stdout).toContain('! No long-running statements');
    expect(human.stdout).not.toContain('✔ No long-running statements');
    expect(human.stdout).toContain('✖ Not recovered yet');
  });

  it('an account without PROCESS never verifies a recovery from its own connections (exit 4)', async () => {
    // One slot left for the account: it has no extra connection.
    held = await holdMysqlSessions(urls.filler!, { sleep: 19 });
    for (const emptied of [false, true]) {
      if (emptied) {
        await held!.close();
        held = undefined;
      }
      const result = await runCli(['verify', '--mysql', urls.noprocess!, '--output', 'json']);
      expect(result.code).toBe(4);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.status).toBe('critical');
      expect(ids(report)).not.toContain('recovered');
      const unverifiable = report.findings.find((f) => f.id === 'unverifiable');
      expect(unverifiable?.message).toContain("GRANT PROCESS ON *.* TO 'noprocess'@'%';");
    }
    const human = await runCli(['verify', '--mysql', urls.noprocess!]);
    expect(human.code).toBe(4);
    expect(human.stdout).not.toContain('Recovered');
  });

  it('an account with PROCESS alone sees every connection: not recovered when full, recovered when emptied', async () => {
    held = await holdMysqlSessions(urls.filler!, { sleep: 19 });
    const full = await runCli(['verify', '--mysql', urls.process!, '--output', 'json']);
    expect(full.code).toBe(4);
    expect(JSON.parse(full.stdout).metrics).toMatchObject({ connections: 19 });
    expect(ids(JSON.parse(full.stdout) as Report)).toEqual(['still-full']);
    await held.close();
    held = undefined;
    const emptied = await runCli(['verify', '--mysql', urls.process!, '--output', 'json']);
    expect(emptied.code).toBe(0);
    expect(ids(JSON.parse(emptied.stdout) as Report)).toEqual(['recovered']);
  });
});
