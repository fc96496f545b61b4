/**
 * A Prometheus that fails, through the built CLI against a real PostgreSQL: down, 5xx, garbage, an
 * empty answer and a bad query each fail the application's step alone in one line, the database
 * steps still run, the status is `unknown` (never healthy), and the bearer token is nowhere —
 * not on screen, not in the JSON, not in the transcript or its exports — even when a proxy echoes
 * it back.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startHttpStub, type HttpStub, type StubHandler } from '../helpers/http-stub.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-server.js';
import { runCli } from '../helpers/run-cli.js';

const TOKEN = 'prom-token-5f1d9c2e';

interface Report {
  status: string;
  checked: string[];
  steps: { id: string; status: string; error?: string; rows?: unknown[] }[];
  findings: { id: string; message: string }[];
}

let server: PgServer;
let prometheus: PrometheusServer;
const stubs: HttpStub[] = [];

beforeAll(async () => {
  server = await startPostgres();
  prometheus = await startPrometheus();
}, 120_000);

afterAll(async () => {
  for (const stub of stubs) await stub.close();
  await prometheus?.stop();
  await server?.stop();
});

async function stub(handler: StubHandler): Promise<string> {
  const started = await startHttpStub(handler);
  stubs.push(started);
  return started.url;
}

const diagnose = (url: string, ...rest: string[]) =>
  runCli(
    ['diagnose', '--pg', server.superuserUrl, '--prometheus', url, '--output', 'json', ...rest],
    {
      env: { PROMETHEUS_TOKEN: TOKEN },
    },
  );

/** The database side ran and measured; the application's step failed alone; no verdict of health. */
function expectFailedAlone(stdout: string, code: number, error: RegExp | 'no series') {
  expect(code).toBe(4);
  const report = JSON.parse(stdout) as Report;
  expect(report.status).toBe('unknown');
  expect(report.checked).toEqual(['database']);
  expect(report.steps.find((s) => s.id === 'utilization')!.status).toBe('ok');
  const pools = report.steps.find((s) => s.id === 'app-pool')!;
  if (error === 'no series') {
    expect(pools.rows).toEqual([]);
    expect(report.findings.map((f) => f.message).join('\n')).toMatch(/no series/);
  } else {
    expect(pools.status).toBe('failed');
    expect(pools.error).toMatch(error);
    expect(pools.error).not.toContain('\n');
  }
}

describe('a Prometheus that fails: its step alone, in one line, the status unknown', () => {
  it('down (nothing listening)', async () => {
    const r = await diagnose(`http://127.0.0.1:${await freePort()}`);
    expectFailedAlone(r.stdout, r.code, /127\.0\.0\.1/);
  }, 60_000);

  it('a 5xx from a proxy', async () => {
    const url = await stub((_req, res) => res.writeHead(503).end('upstream unavailable'));
    const r = await diagnose(url);
    expectFailedAlone(r.stdout, r.code, /HTTP 503/);
  }, 60_000);

  it('garbage instead of JSON', async () => {
    const url = await stub((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'),
    );
    const r = await diagnose(url);
    expectFailedAlone(r.stdout, r.code, /garbled/);
  }, 60_000);

  it('an empty answer (no series)', async () => {
    const url = await stub((_req, res) =>
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"status":"success","data":{"resultType":"vector","result":[]}}'),
    );
    const r = await diagnose(url);
    expectFailedAlone(r.stdout, r.code, 'no series');
  }, 60_000);

  it("a bad query: Prometheus's own error", async () => {
    const r = await diagnose(prometheus.url, '--set', 'app_pool_selector=job=="x"');
    expectFailedAlone(r.stdout, r.code, /parse error/);
  }, 60_000);
});

describe('the Prometheus token', () => {
  it('is nowhere: screen, JSON, transcript, exports — even echoed back by a proxy', async () => {
    const url = await stub((req, res) =>
      res.writeHead(502).end(`bad gateway; you sent ${req.headers.authorization ?? ''}`),
    );
    const dir = mkdtempSync(join(tmpdir(), 'poolctl-token-'));
    const transcript = join(dir, 'incident.jsonl');
    const json = await diagnose(url, '--transcript', transcript);
    const human = await runCli(
      ['diagnose', '--pg', server.superuserUrl, '--prometheus', url, '--transcript', transcript],
      { env: { PROMETHEUS_TOKEN: TOKEN } },
    );
    const exports = await Promise.all(
      ['md', 'html', 'json'].map((format) =>
        runCli(['transcript', 'export', transcript, '--format', format]),
      ),
    );
    // The proxy saw it: the token was sent (so its absence below is not for want of one).
    expect(stubs.at(-1)!.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const everything = [
      json.stdout,
      json.stderr,
      human.stdout,
      human.stderr,
      readFileSync(transcript, 'utf8'),
      ...exports.flatMap((e) => [e.stdout, e.stderr]),
    ].join('\n');
    expect(everything).toContain('HTTP 502');
    expect(everything).not.toContain(TOKEN);
  }, 90_000);
});
