import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetyOptions, mitigationContext } from '../../src/commands/safety-options.js';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { resolveParameters } from '../../src/runbook/params.js';
import { InterruptGate } from '../../src/interrupt.js';
import { connectDatabase } from '../../src/targets/connect.js';
import { Targets } from '../../src/targets/set.js';
import { resolveDatabaseTarget } from '../../src/targets/resolve.js';
import { openTranscript } from '../../src/transcript/writer.js';
import { runAction } from '../../src/wizard/mitigation.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

// The README's PostgreSQL accounts, tested with exactly their grants on a server that another
// role (`app`) has filled. PostgreSQL 15 shows a role without pg_read_all_stats only the pid,
// usesysid, datid and application_name of other roles' sessions: no backend_type, state or query.

interface Report {
  status: string;
  metrics: Record<string, number>;
  findings: { id: string; severity: string; message: string }[];
  steps: { id: string; status: string; rows?: Record<string, unknown>[] }[];
  actions: {
    id: string;
    victims: { pid: number }[];
    results: { pid: number; outcome: string }[];
  }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('least-privileged PostgreSQL roles on a server filled by another role', () => {
  let server: PgServer;
  let held: HeldSessions | undefined;
  let oncallUrl: string;
  let blindUrl: string;

  beforeAll(async () => {
    // 30 slots, 3 for superusers: 27 usable. 25 held by app + poolctl's own = 26.
    server = await startPostgres({ maxConnections: 30, superuserReservedConnections: 3 });
    oncallUrl = await server.createRole('oncall', ['pg_monitor', 'pg_signal_backend']);
    blindUrl = await server.createRole('blind', []);
  });
  afterAll(async () => {
    await held?.close();
    await server?.stop();
  });

  async function fill() {
    await held?.close();
    held = await holdSessions(server.appUrl, { idle: 20, idleInTx: 3, long: 2 });
    await sleep(1200); // past kill_idle_after=1s
  }

  async function alive(pids: number[]): Promise<number[]> {
    const out = await server.psql(
      `SELECT pid FROM pg_stat_activity WHERE pid IN (${pids.join(',')}) ORDER BY pid`,
    );
    return out.split('\n').filter(Boolean).map(Number);
  }

  describe('a role with neither pg_read_all_stats nor pg_signal_backend', () => {
    beforeAll(fill);

    it('diagnose counts every connection, says it cannot see them and names the grant (critical, exit 4)', async () => {
      const result = await runCli(['diagnose', '--pg', blindUrl, '--output', 'json']);
      expect(result.code).toBe(4);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.status).toBe('critical');
      // Counted by pid, role and database, which stay visible: 25 of 27, not 0.
      expect(report.metrics).toMatchObject({ connections: 25, state_hidden: 25 });
      expect(report.metrics.utilization_percent).toBeCloseTo(92.6, 1);
      const limited = report.findings.find((f) => f.id === 'limited-view');
      expect(limited?.severity).toBe('critical');
      expect(limited?.message).toContain('GRANT pg_read_all_stats TO blind;');
      expect(limited?.message).toContain('GRANT pg_signal_backend TO blind;');
      // No verdict on what the hidden sessions do, and no kill offered from it.
      expect(report.findings.map((f) => f.id)).not.toContain('idle-dominates');
    });

    it('diagnose in human mode does not read the full server as empty', async () => {
      const result = await runCli(['diagnose', '--pg', blindUrl]);
      expect(result.code).toBe(4);
      expect(result.stdout).toContain('● 92.6% full: 25 of 27 usable connections');
      expect(result.stdout).toContain("25 whose state poolctl's role cannot see");
      expect(result.stdout).toMatch(/Status: CRITICAL/);
      expect(result.stdout).not.toMatch(/HEALTHY|0\.0% full/);
    });

    it('verify never says recovered, full or emptied (exit 4)', async () => {
      const full = await runCli(['verify', '--pg', blindUrl, '--output', 'json']);
      expect(full.code).toBe(4);
      expect(JSON.parse(full.stdout).findings.map((f: { id: string }) => f.id)).toEqual(
        expect.arrayContaining(['unverifiable', 'still-full']),
      );
      await held?.close();
      held = undefined;
      const emptied = await runCli(['verify', '--pg', blindUrl, '--output', 'json']);
      expect(emptied.code).toBe(4);
      const report = JSON.parse(emptied.stdout) as Report;
      expect(report.status).toBe('critical');
      expect(report.findings.map((f) => f.id)).not.toContain('recovered');
      const human = await runCli(['verify', '--pg', blindUrl]);
      expect(human.code).toBe(4);
      expect(human.stdout).not.toContain('Recovered');
      expect(human.stdout).toContain('GRANT pg_read_all_stats TO blind;');
    });

    it('mitigate refuses a kill it cannot see to choose, --dry-run too, naming the grant (exit 2)', async () => {
      await fill();
      const pids = held!.pids;
      for (const mode of ['--yes', '--dry-run']) {
        const result = await runCli([
          'mitigate',
          '--pg',
          blindUrl,
          '--action',
          'kill-idle',
          '--set',
          'kill_idle_after=1s',
          mode,
        ]);
        expect(result.code).toBe(2);
        expect(result.stderr).toContain('GRANT pg_read_all_stats TO blind;');
        expect(result.stderr).toMatch(/refused, nothing was done/);
        expect(result.stdout + result.stderr).not.toMatch(/nothing to do|Error:\s+at /);
      }
      expect(await alive(pids)).toEqual([...pids].sort((a, b) => a - b));
    });
    it('the wizard path to a kill (runAction, as the offer calls it) refuses too, naming the grant', async () => {
      await fill();
      const pids = held!.pids;
      const runbook = defaultRunbookFor('postgres');
      const values = resolveParameters(runbook.parameters, { kill_idle_after: '1s' }, runbook.id);
      const spec = await resolveDatabaseTarget(
        { pg: blindUrl, connectTimeoutMs: 5000, statementTimeoutMs: 10_000 },
        {},
      );
      const targets = new Targets(
        { database: spec },
        {
          database: connectDatabase,
          prometheus: () => Promise.reject(new Error('not configured')),
          kubernetes: () => Promise.reject(new Error('not configured')),
        },
      );
      const dir = mkdtempSync(join(tmpdir(), 'poolctl-blind-'));
      const transcript = openTranscript(join(dir, 'blind.jsonl'), 'blind');
      try {
        const context = mitigationContext(parseSafetyOptions({ yes: true }), {
          runbook,
          values,
          targets,
          interrupts: new InterruptGate(),
          given: ['kill_idle_after'],
          transcript,
          reporter: { victims() {}, change() {}, notice() {}, result() {} },
        });
        const killIdle = runbook.actions.find((a) => a.id === 'kill-idle')!;
        await expect(runAction(killIdle, context)).rejects.toThrow(
          /refused, nothing was done: .*GRANT pg_read_all_stats TO blind;/,
        );
      } finally {
        transcript.end('error', 2);
        await targets.close();
      }
      expect(await alive(pids)).toEqual([...pids].sort((a, b) => a - b));
    });
  });

  describe('the on-call role: pg_monitor + pg_signal_backend', () => {
    beforeAll(fill);

    it('diagnose sees every session and its state', async () => {
      const result = await runCli(['diagnose', '--pg', oncallUrl, '--output', 'json']);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as Report;
      expect(report.status).toBe('warning');
      expect(report.metrics).toMatchObject({
        connections: 25,
        idle: 20,
        idle_in_transaction: 3,
        active: 2,
        state_hidden: 0,
      });
      expect(report.findings.map((f) => f.id)).not.toContain('limited-view');
      // It knows that it sees every session, which is what lets it call a server healthy.
      const row = report.steps.find((s) => s.id === 'utilization')?.rows?.[0];
      expect(row).toMatchObject({ sees: 'all sessions', role: 'oncall' });
    });

    it('verify fails on the full server; mitigate --dry-run shows 20, --yes kills them; verify recovers', async () => {
      const full = await runCli(['verify', '--pg', oncallUrl, '--output', 'json']);
      expect(full.code).toBe(4);
      expect((JSON.parse(full.stdout) as Report).status).toBe('critical');

      const args = [
        'mitigate',
        '--pg',
        oncallUrl,
        '--action',
        'kill-idle',
        '--set',
        'kill_idle_after=1s',
      ];
      const dry = await runCli([...args, '--dry-run', '--output', 'json']);
      expect(dry.code).toBe(0);
      const idle = held!.byKind.idle;
      const shown = (JSON.parse(dry.stdout) as Report).actions[0]!.victims.map((v) => v.pid);
      expect(shown.sort()).toEqual([...idle].sort());
      expect(await alive(idle)).toHaveLength(20);

      const killed = await runCli([...args, '--yes', '--output', 'json']);
      expect(killed.code).toBe(0);
      const report = JSON.parse(killed.stdout) as Report;
      expect(report.actions[0]!.results.filter((r) => r.outcome === 'terminated')).toHaveLength(20);
      expect(report.status).toBe('healthy');
      expect(await alive(idle)).toEqual([]);

      const after = await runCli(['verify', '--pg', oncallUrl, '--output', 'json']);
      expect(after.code).toBe(0);
      expect((JSON.parse(after.stdout) as Report).findings.map((f) => f.id)).toEqual(['recovered']);
    });
  });

  it('mitigate gives a by-hand action the health it measured: its status and exit agree', async () => {
    const result = await runCli([
      'mitigate',
      '--pg',
      oncallUrl,
      '--action',
      'restart-postgres',
      '--output',
      'json',
    ]);
    const report = JSON.parse(result.stdout) as Report;
    // PostgreSQL's restart-postgres is by hand (poolctl never restarts the server). The server was
    // emptied above: measured healthy, so exit 0 (not "unknown" with exit 0).
    expect(report.metrics.utilization_percent).toBeLessThan(90);
    expect(report.status).toBe('healthy');
    expect(result.code).toBe(0);
  });

  describe('a role that cannot read pg_stat_activity at all', () => {
    it('diagnose and verify say unknown (exit 4), never healthy', async () => {
      // Revoked in the postgres database only; the role connects there.
      await server.psql('REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;');
      const url = await server.createRole('noview', ['pg_signal_backend'], 'postgres');
      for (const command of ['diagnose', 'verify']) {
        const result = await runCli([command, '--pg', url, '--output', 'json']);
        expect(result.code).toBe(4);
        const report = JSON.parse(result.stdout) as Report;
        expect(report.status).toBe('unknown');
        const notMeasured = report.findings.find((f) => f.id === 'not-measured');
        expect(notMeasured?.message).toMatch(/permission denied.*no status it could not measure/);
      }
      const human = await runCli(['verify', '--pg', url]);
      expect(human.code).toBe(4);
      expect(human.stdout).toContain('? Not verified');
      expect(human.stdout).not.toContain('Recovered');
      const diagnose = await runCli(['diagnose', '--pg', url]);
      expect(diagnose.stdout).toContain('Status: UNKNOWN');
      expect(diagnose.stdout).not.toMatch(/0\.0% full|looks healthy/);
    });
  });
});
