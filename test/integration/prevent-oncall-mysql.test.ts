/**
 * prevent and the capacity guard on a stock MariaDB 10.11 with the README's least-privileged
 * on-call account (PROCESS, CONNECTION ADMIN, SUPER ON *.*; nothing on mysql.* or
 * performance_schema): the audit, the SET GLOBAL fix and the capacity arithmetic all work with it,
 * and what it cannot read is said, not guessed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKubectlStandin, type KubectlStandin } from '../helpers/kubectl-standin.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  findings: { id: string; severity: string; message: string }[];
  actions: {
    id: string;
    executed: boolean;
    declined: boolean;
    setting?: Record<string, unknown>;
    commands?: { status: string }[];
  }[];
}

describe('prevent with the on-call account (MariaDB, stock settings)', () => {
  let server: MariaDBServer;
  let oncall: string;
  let kubectl: KubectlStandin;
  beforeAll(async () => {
    server = await startMariaDB({ maxConnections: 40 });
    oncall = await server.createAccount('oncall', 'oncall');
    kubectl = writeKubectlStandin({ contexts: ['prod'] });
  });
  afterAll(async () => {
    kubectl?.remove();
    await server?.stop();
  });

  const prevent = (...args: string[]) =>
    runCli(['prevent', '--mysql', oncall, '--output', 'json', ...args]);
  const ids = (r: Report) => r.findings.map((f) => f.id);

  it('--check exits 4; --apply statement-timeout --yes sets max_statement_time with SUPER alone; --check then passes that audit', async () => {
    const before = await prevent('--check');
    expect(before.code, before.stderr).toBe(4);
    const audit = JSON.parse(before.stdout) as Report;
    expect(ids(audit)).toEqual(
      expect.arrayContaining(['missing-statement-timeout', 'missing-idle-in-transaction-timeout']),
    );
    // The settings' own values in the messages (not the name of the setting twice).
    expect(audit.findings.find((f) => f.id === 'wait-timeout-long')?.message).toMatch(
      /^wait_timeout is 28800s:/,
    );
    expect(audit.findings.find((f) => f.id === 'interactive-timeout-long')?.message).toMatch(
      /^interactive_timeout is 28800s:/,
    );
    // performance_schema is not granted: said, with the grant, not taken for "no N+1".
    expect(audit.findings).toContainEqual(
      expect.objectContaining({
        id: 'step-failed',
        message: expect.stringMatching(/GRANT SELECT ON `performance_schema`/),
      }),
    );

    const applied = await prevent('--apply', 'statement-timeout', '--yes');
    const report = JSON.parse(applied.stdout) as Report;
    expect(report.actions.map((a) => [a.id, a.executed, a.setting])).toEqual([
      [
        'statement-timeout',
        true,
        { name: 'max_statement_time', current: '0', next: '30', after: '30' },
      ],
    ]);
    expect(report.actions[0]!.commands!.map((c) => c.status)).toEqual(['confirmed']);
    // Still 4: the idle-transaction limit is off, and the audit after the fix says so.
    expect(applied.code, applied.stderr).toBe(4);
    expect(ids(report)).not.toContain('missing-statement-timeout');
    expect(ids(report)).toContain('missing-idle-in-transaction-timeout');
    expect((await server.sql('SELECT @@GLOBAL.max_statement_time')).trim()).toBe('30.000000');

    const after = JSON.parse((await prevent('--check')).stdout) as Report;
    expect(ids(after)).not.toContain('missing-statement-timeout');

    // The other fix too, with the same account: then --check exits 0.
    const second = await prevent('--apply', 'idle-in-transaction-timeout', '--yes');
    expect(second.code, second.stderr).toBe(0);
    expect((await server.sql('SELECT @@GLOBAL.idle_transaction_timeout')).trim()).toBe('30');
    const clean = await prevent('--check');
    expect(clean.code, clean.stdout).toBe(0);
  }, 90_000);

  it('the capacity guard reads max_connections with the on-call account: (6 + 2) × (20 + 10) > 40 − 10 → exit 5, nothing scaled', async () => {
    const r = await runCli(
      [
        'mitigate',
        '--mysql',
        oncall,
        '--kube-context',
        'prod',
        '--namespace',
        'shop',
        '--kubectl',
        kubectl.bin,
        '--action',
        'scale-app',
        ...['--set', 'replicas=6', '--set', 'pool_size=20', '--set', 'max_overflow=10'],
        '--yes',
        '--output',
        'json',
      ],
      { env: kubectl.env },
    );
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain('(6 + 2) × (20 + 10) = 240 > 40 usable − 10 buffer');
    expect(r.stderr).toContain('--allow-oversubscribe');
    const action = (JSON.parse(r.stdout) as Report).actions[0]!;
    expect(action).toMatchObject({ id: 'scale-app', executed: false, declined: true });
    expect(kubectl.calls().filter((args) => args.includes('scale'))).toEqual([]);
  }, 60_000);
});
