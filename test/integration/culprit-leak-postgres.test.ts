/**
 * The leak signature on both sides (issue 14, item 4): a replica of a real application (pg.Pool,
 * prom-client, scraped by a real Prometheus) that checks out connections one request at a time and
 * never returns them, against a real PostgreSQL with room. diagnose names the application on the
 * server and the replica in the pools, calls it critical, puts restart-app and rollback-app first,
 * and names the replica that stands out against the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeakRig, type LeakRig } from '../helpers/leak-rig.js';
import type { PgServer } from '../helpers/postgres-server.js';
import type { PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

interface Report {
  status: string;
  exhausted?: string;
  findings: { id: string; severity: string; message: string }[];
  suggested: { id: string }[];
}

/** How many replicas' pools the run's `app-pool` step read. */
function replicasMeasured(stdout: string): number {
  const steps = (JSON.parse(stdout) as { steps?: { id: string; rows?: unknown[] }[] }).steps;
  return steps?.find((s) => s.id === 'app-pool')?.rows?.length ?? 0;
}

let rig: LeakRig;
let server: PgServer;
let prometheus: PrometheusServer;

beforeAll(async () => {
  rig = await startLeakRig({ poolSize: 3, maxOverflow: 1, poolTimeoutMs: 500 });
  ({ server, prometheus } = rig);
  // One request a second to the leaking replica: each leaks its connection at its own moment.
  for (let i = 0; i < 4; i++) {
    await rig.app.request('api-2');
    await new Promise((r) => setTimeout(r, 1100));
  }
  await rig.waitUntilFull(30_000);
}, 120_000);

afterAll(async () => {
  await rig?.stop();
});

describe('a replica leaking one connection per request', () => {
  it('diagnose: critical, the leak named on both sides, restart and rollback first, the replica standing out', async () => {
    const diagnose = () =>
      runCli(
        ['diagnose', '--pg', server.superuserUrl, '--prometheus', prometheus.url].concat([
          '--set',
          'leak_idle_after=1s',
          '--output',
          'json',
        ]),
      );
    // Under a loaded suite one scrape of a replica can miss its 1 s timeout, and Prometheus then
    // has no sample of that replica for a second: the comparison below needs all three measured.
    let r = await diagnose();
    for (let i = 0; i < 3 && replicasMeasured(r.stdout) < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      r = await diagnose();
    }
    expect(r.code, r.stderr).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.exhausted).toBe('application');
    const confirmed = report.findings.find((f) => f.id === 'leak-confirmed');
    expect(confirmed?.severity).toBe('critical');
    expect(confirmed!.message).toMatch(
      /^Connection leak: replica api-2's pool is at its limit \(4 of 4; full: api-2\) while api \(app from 127\.0\.0\.1\) holds 4 sessions idle past 1s on the server, left at [3-5] different moments/,
    );
    const signature = report.findings.find((f) => f.id === 'leak-signature');
    expect(signature!.message).toContain('Last query: SELECT id, status FROM orders WHERE id = 1');
    expect(report.suggested.map((s) => s.id).slice(0, 2)).toEqual(['restart-app', 'rollback-app']);
    const outlier = report.findings.find((f) => f.id === 'app-pool-outlier');
    expect(outlier!.message).toMatch(
      /^Replica api-2 stands out: its pool is at 100% \(4 of 4\), ∞× the median of the other 2 replicas \(0%; next api-[13] at 0%\)/,
    );
  }, 60_000);
});
