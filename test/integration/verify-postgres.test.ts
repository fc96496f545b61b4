import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions } from '../helpers/sessions.js';

describe('verify on PostgreSQL', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await startPostgres({ maxConnections: 30 });
  });
  afterAll(async () => server?.stop());

  it('is healthy on a quiet server (exit 0) and names the thresholds it checked', async () => {
    const result = await runCli(['verify', '--pg', server.superuserUrl, '--output', 'json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.status).toBe('healthy');
    expect(report.findings.map((f: { id: string }) => f.id)).toEqual(['recovered']);
  });

  it('fails above verify_utilization_max (exit 4), and --wait sees the recovery when it comes', async () => {
    const held = await holdSessions(server.appUrl, { idle: 20 });
    try {
      const full = await runCli(['verify', '--pg', server.superuserUrl, '--output', 'json']);
      expect(full.code).toBe(4);
      expect(JSON.parse(full.stdout).findings[0]).toMatchObject({
        id: 'still-full',
        severity: 'critical',
      });

      // Empty the server only once poolctl has measured it full (its first pass says so on
      // stderr): emptying it earlier, on a loaded machine, lets the first pass pass.
      let firstPassDone: () => void = () => {};
      const firstPass = new Promise<void>((resolve) => (firstPassDone = resolve));
      const waiting = runCli(
        [
          'verify',
          '--pg',
          server.superuserUrl,
          '--wait',
          '20s',
          '--interval',
          '300ms',
          '--set',
          'verify_stable_for=1s',
          '--output',
          'json',
        ],
        {
          timeoutMs: 30_000,
          onStderr: (stderr) => {
            if (/not there yet \(attempt 1\)/.test(stderr)) firstPassDone();
          },
        },
      );
      const outcome = await Promise.race([
        firstPass.then(() => 'measured' as const),
        waiting.then((r) => `exited ${r.code} before its first pass failed: ${r.stderr}`),
        new Promise<string>((r) => setTimeout(() => r('no first pass within 15s'), 15_000)),
      ]);
      if (outcome !== 'measured') throw new Error(`verify --wait: ${outcome}`);
      await held.close();
      const result = await waiting;
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/not there yet \(attempt 1\)/);
      // Healthy as soon as enough of the 20 have gone: below 70% of 27 usable slots.
      const report = JSON.parse(result.stdout);
      expect(report.findings.map((f: { id: string }) => f.id)).toEqual(['recovered']);
      expect(report.metrics.utilization_percent).toBeLessThan(70);
    } finally {
      await held.close();
    }
  });

  it('names itself in its header and does not tick a check whose rows show it failed (exit 4)', async () => {
    const held = await holdSessions(server.appUrl, { long: 5 });
    try {
      await new Promise((r) => setTimeout(r, 1100));
      const args = ['verify', '--pg', server.superuserUrl, '--set', 'long_query_after=1s'];
      const result = await runCli(args);
      expect(result.code).toBe(4);
      expect(result.stdout).toMatch(/^poolctl verify · /);
      expect(result.stdout).not.toContain('poolctl diagnose');
      // Five long queries in its table: the check failed, and the verdict says so.
      expect(result.stdout).toContain('! No long-running queries');
      expect(result.stdout).not.toContain('✔ No long-running queries');
      expect(result.stdout).toMatch(/5 queries still running longer than 1s/);
      expect(result.stdout).toContain('✖ Not recovered yet');
      expect(result.stdout).not.toContain('Recovered:');
    } finally {
      await held.close();
    }
  });

  it('says unknown, never recovered or healthy, when the metrics step returns no row or no numbers (exit 4)', async () => {
    const runbook = 'test/fixtures/runbooks/postgres-unmeasured/unmeasured.yaml';
    for (const command of ['verify', 'diagnose']) {
      const result = await runCli([command, '--pg', server.superuserUrl, '--runbook', runbook]);
      expect(result.code).toBe(4);
      expect(result.stdout).not.toMatch(/Recovered|HEALTHY|looks healthy|0\.0% full/);
      const json = await runCli([
        command,
        '--pg',
        server.superuserUrl,
        '--runbook',
        runbook,
        '--output',
        'json',
      ]);
      expect(json.code).toBe(4);
      const report = JSON.parse(json.stdout);
      expect(report.status).toBe('unknown');
      const reason = report.findings.find((f: { id: string }) => f.id === 'not-measured');
      expect(reason.message).toMatch(
        command === 'verify'
          ? /"Utilization after the action" returned no row/
          : /"How full is the server" returned no number for utilization_percent, usable_connections/,
      );
    }
  });

  it('--wait passes only once the checks have held for verify_stable_for: one lucky sample is not a recovery', async () => {
    const brief = await runCli([
      'verify',
      '--pg',
      server.superuserUrl,
      '--wait',
      '2s',
      '--interval',
      '500ms',
      '--set',
      'verify_stable_for=30s',
      '--output',
      'json',
    ]);
    expect(brief.code).toBe(4);
    const report = JSON.parse(brief.stdout);
    expect(report.status).toBe('unknown');
    expect(JSON.stringify(report.findings)).toMatch(/not the 30s verify_stable_for asks/);

    const held = await runCli(
      ['verify', '--pg', server.superuserUrl, '--wait', '20s', '--interval', '500ms'].concat([
        '--set',
        'verify_stable_for=1s',
        '--output',
        'json',
      ]),
    );
    expect(held.code).toBe(0);
    expect(held.stderr).toMatch(/checking it holds for 1s/);
  });

  it('without Prometheus it says it checked the database side only, on screen and in the JSON', async () => {
    const human = await runCli(['verify', '--pg', server.superuserUrl]);
    expect(human.stdout).toContain('Checked the database side only: pass --prometheus URL');
    const json = await runCli(['verify', '--pg', server.superuserUrl, '--output', 'json']);
    expect(JSON.parse(json.stdout).checked).toEqual(['database']);
  });
});
