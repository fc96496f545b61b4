/**
 * The trend of the application's pool (issue 14, item 5): a real Prometheus scrapes a metrics
 * endpoint whose one replica leaks (its checked-out connections only ever grow, until its pool is
 * full) while another stays low. The built CLI's diagnose reads the fullest replica over
 * `trend_window`, classifies it, draws it, records it in the transcript, and the HTML export
 * charts it. Without Prometheus the step is listed by hand.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRisingPool, type RisingPool } from '../helpers/leak-rig.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import type { PrometheusServer } from '../helpers/prometheus-server.js';
import { repoRoot, runCli } from '../helpers/run-cli.js';

interface Report {
  steps: { id: string; status: string; rows?: Record<string, unknown>[] }[];
  findings: { id: string; severity: string; message: string; suggest: string[] }[];
  suggested: { id: string }[] | string[];
  manual: { step: string; command: string; flag?: string }[];
  transcript: string;
}

let server: PgServer;
let rising: RisingPool;
let prometheus: PrometheusServer;

beforeAll(async () => {
  server = await startPostgres();
  // api-1 leaks one more every 600 ms, up to its pool's 30: the whole rise takes ~16 s.
  rising = await startRisingPool({ perTick: 1 });
  prometheus = rising.prometheus;
}, 120_000);

afterAll(async () => {
  await rising?.stop();
  await server?.stop();
});

/** The bundle's files that hold asciichart (dist/bundle-meta.json, esbuild's metafile). */
function asciichartFiles(): string[] {
  const meta = JSON.parse(
    readFileSync(path.join(repoRoot, 'dist', 'bundle-meta.json'), 'utf8'),
  ) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  return Object.entries(meta.outputs)
    .filter(([, { inputs }]) =>
      Object.keys(inputs).some((i) => i.includes('node_modules/asciichart/')),
    )
    .map(([output]) => pathToFileURL(path.resolve(repoRoot, output)).href);
}

/** The module files a run loaded, as test/helpers/module-recorder.mjs logs them. */
function moduleEnv(log: string): Record<string, string> {
  const recorder = pathToFileURL(
    path.join(repoRoot, 'test', 'helpers', 'module-recorder.mjs'),
  ).href;
  return { NODE_OPTIONS: `--import=${recorder}`, POOLCTL_MODULE_LOG: log };
}

const diagnose = (extra: string[], env: Record<string, string> = {}) =>
  runCli(
    [
      'diagnose',
      '--pg',
      server.superuserUrl,
      '--prometheus',
      prometheus.url,
      '--set',
      'trend_window=25s',
      ...extra,
    ],
    { timeoutMs: 60_000, env },
  );

describe("the application pool's trend", () => {
  it('a real leak in one replica: classified as a leak, its points and numbers in the JSON, restart-app suggested', async () => {
    const logDir = mkdtempSync(path.join(tmpdir(), 'poolctl-trend-modules-'));
    const log = path.join(logDir, 'modules.log');
    const r = await diagnose(['--output', 'json'], moduleEnv(log));
    // The chart library loads on the human path only (DESIGN.md "Start-up budget").
    const loaded = readFileSync(log, 'utf8').split('\n');
    rmSync(logDir, { recursive: true, force: true });
    expect(asciichartFiles().length).toBeGreaterThan(0);
    expect(loaded.filter((m) => asciichartFiles().includes(m))).toEqual([]);
    expect(r.stderr).not.toMatch(/internal error/);
    const report = JSON.parse(r.stdout) as Report;
    const step = report.steps.find((s) => s.id === 'app-pool-trend')!;
    expect(step.status).toBe('ok');
    expect(step.rows).toHaveLength(1);
    const row = step.rows![0]!;
    expect(row.trend, String(row.trend_evidence)).toBe('leak');
    expect(row.trend_evidence).toMatch(/never gives back/);
    expect(row.max).toBe(100);
    const points = row.points as [number, number][];
    // 25 s at one point a second, each [unix seconds, percent], oldest first.
    expect(points.length).toBeGreaterThanOrEqual(15);
    expect(points[0]![1]).toBeLessThan(points.at(-1)![1]);
    const leak = report.findings.find((f) => f.id === 'trend-leak')!;
    expect(leak).toMatchObject({ severity: 'warning', suggest: ['restart-app'] });
    expect(leak.message).toContain('over 25s');
    const suggested = report.suggested.map((s) => (typeof s === 'string' ? s : s.id));
    expect(suggested).toContain('restart-app');

    // The transcript carries the series; the HTML export draws it.
    const events = readFileSync(report.transcript, 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { type: string; step?: string; rows?: Record<string, unknown>[] },
      );
    const recorded = events.find((e) => e.type === 'step.result' && e.step === 'app-pool-trend')!;
    expect(recorded.rows![0]).toMatchObject({ trend: 'leak', points: expect.any(Array) });
    const html = await runCli(['transcript', 'export', report.transcript, '--format', 'html']);
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).toMatch(
      /<svg class="chart"[^>]*aria-label="Application pool utilization trend: leak/,
    );
  }, 90_000);

  it('the human view draws the series with its verdict under the step', async () => {
    const logDir = mkdtempSync(path.join(tmpdir(), 'poolctl-trend-modules-'));
    const log = path.join(logDir, 'modules.log');
    const r = await diagnose([], moduleEnv(log));
    const loaded = readFileSync(log, 'utf8').split('\n');
    rmSync(logDir, { recursive: true, force: true });
    // The positive control of the JSON test's "not loaded": drawing loads it.
    expect(loaded.filter((m) => asciichartFiles().includes(m))).not.toEqual([]);
    expect(r.stderr).not.toMatch(/internal error/);
    const at = r.stdout.indexOf('Application pool utilization trend');
    expect(at).toBeGreaterThan(-1);
    const section = r.stdout.slice(at, r.stdout.indexOf('\n\n', at + 1) + 2 + 4000);
    // asciichart's axis and line characters, the 0–100 % scale, then the verdict.
    expect(section).toMatch(/ 100% [┤┼]/);
    expect(section).toMatch(/ 50% [┤┼]/);
    expect(section).toMatch(/ 0% [┤┼]/);
    expect(section).toMatch(/╭─+╯/);
    expect(section).toMatch(/Trend: LEAK .*never gives back/);
    expect(section).not.toMatch(/points/);
  }, 90_000);

  it('without Prometheus the trend is a step by hand: the range query, its window, the flag', async () => {
    const r = await runCli(['diagnose', '--pg', server.superuserUrl, '--output', 'json']);
    const report = JSON.parse(r.stdout) as Report;
    const trend = report.manual.find((m) => m.step === 'app-pool-trend')!;
    expect(trend.command).toContain('/api/v1/query_range');
    expect(trend.command).toContain(
      'max(100 * db_pool_connections_active{job=~".*"} / db_pool_connections_max{job=~".*"})',
    );
    expect(trend.command).toContain('the last 1h');
    expect(trend.flag).toMatch(/--prometheus URL/);
  }, 60_000);
});
