import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpClient } from '../../src/io/http.js';
import {
  openPrometheus,
  PrometheusError,
  resolvePrometheus,
  type PrometheusSpec,
  type PrometheusTarget,
} from '../../src/targets/prometheus.js';
import { freePort } from '../helpers/free-port.js';
import { makeTestCa, startHttpStub, type HttpStub, type TestCa } from '../helpers/http-stub.js';
import {
  startMetricsEndpoint,
  startPrometheus,
  type MetricsEndpoint,
  type PrometheusServer,
} from '../helpers/prometheus-server.js';

// The Prometheus target against a real Prometheus (Debian's 2.42) scraping known values, one of
// them served over HTTPS with a throwaway CA and basic auth (Prometheus's own web config), and
// against node http servers that fail the ways a Prometheus behind a proxy fails: 5xx, garbage,
// silence.

/** Known pool numbers, as the seed's metrics: api-1 is full, api-2 has room. */
const EXPOSITION = (active: number): string =>
  [
    `db_pool_connections_active ${active}`,
    'db_pool_connections_max 30',
    'db_pool_weird NaN',
    'db_pool_infinite +Inf',
  ].join('\n');

const USER = 'ops';
const PASSWORD = 's3cret-pw';
/** bcrypt of PASSWORD (Prometheus stores only the hash; cost 4 keeps the test fast). */
const PASSWORD_BCRYPT = '$2b$04$GvO2Kizy6RRV.6UwOyuW7OIeNSuYSepeLFR0s5P3SH.zbPfbjJhJ.';
const TOKEN = 'tok-7f3a9c1e55d04b2a';

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let api1: MetricsEndpoint;
let api2: MetricsEndpoint;
let prom: PrometheusServer;
let secureProm: PrometheusServer;

const spec = (over: Partial<PrometheusSpec> = {}): PrometheusSpec => ({
  url: prom.url,
  timeoutMs: 5_000,
  from: '--prometheus',
  ...over,
});
const open = (over: Partial<PrometheusSpec> = {}): PrometheusTarget => {
  const s = spec(over);
  return openPrometheus(s, httpClient({ caFile: s.caFile }));
};

async function failure(promise: Promise<unknown>): Promise<PrometheusError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PrometheusError);
  expect((error as Error).message).not.toContain('\n');
  return error as PrometheusError;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'poolctl-prom-target-'));
  ca = makeTestCa(dir, 'corp');
  otherCa = makeTestCa(dir, 'other');
  [api1, api2] = await Promise.all([
    startMetricsEndpoint(EXPOSITION(30)),
    startMetricsEndpoint(EXPOSITION(5)),
  ]);
  const scrape = [
    { job: 'api', targets: [api1.target], labels: { pod: 'api-1' } },
    { job: 'api', targets: [api2.target], labels: { pod: 'api-2' } },
  ];
  [prom, secureProm] = await Promise.all([
    startPrometheus({ scrape }),
    startPrometheus({
      scrape,
      web: {
        tls: { cert: ca.cert, key: ca.key, caPem: ca.caPem },
        basicAuth: { user: USER, password: PASSWORD, bcryptHash: PASSWORD_BCRYPT },
      },
    }),
  ]);
  // Both replicas scraped at least three times: a range query then has points to return.
  const threeScrapes = (p: PrometheusServer): Promise<unknown> =>
    p.waitForResult('count_over_time(db_pool_connections_active[1m]) >= 3', {
      until: (r) => r.length === 2,
      timeoutMs: 30_000,
    });
  await Promise.all([threeScrapes(prom), threeScrapes(secureProm)]);
});
afterAll(async () => {
  await Promise.all([prom?.stop(), secureProm?.stop(), api1?.close(), api2?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Prometheus target: queries against a real Prometheus', () => {
  it('an instant vector: one sample per replica, with its labels', async () => {
    const samples = await open().instant(
      '(db_pool_connections_active / db_pool_connections_max) * 100',
    );
    const byPod = Object.fromEntries(samples.map((s) => [s.labels.pod, s.value]));
    expect(byPod).toEqual({ 'api-1': 100, 'api-2': (5 / 30) * 100 });
    expect(samples[0]!.labels).toMatchObject({ job: 'api' });
  });

  it('a scalar: one sample without labels', async () => {
    expect(await open().instant('scalar(sum(db_pool_connections_active))')).toEqual([
      { labels: {}, value: 35 },
    ]);
  });

  it('NaN and +Inf become the numbers NaN and Infinity (JSON has neither)', async () => {
    const target = open();
    const weird = await target.instant('max(db_pool_weird)');
    expect(weird).toHaveLength(1);
    expect(weird[0]!.value).toBeNaN();
    expect(await target.instant('max(db_pool_infinite)')).toEqual([
      { labels: {}, value: Infinity },
    ]);
    expect(await target.instant('-max(db_pool_infinite)')).toEqual([
      { labels: {}, value: -Infinity },
    ]);
  });

  it('an empty result is [] (the caller decides what empty means)', async () => {
    expect(await open().instant('db_pool_connections_active{pod="api-9"}')).toEqual([]);
  });

  it('a range query: one series per replica, points in time order', async () => {
    const series = await open().range('db_pool_connections_active', 60, 1);
    expect(series.map((s) => s.labels.pod).sort()).toEqual(['api-1', 'api-2']);
    const api1Series = series.find((s) => s.labels.pod === 'api-1')!;
    expect(api1Series.points.length).toBeGreaterThanOrEqual(3);
    expect(api1Series.points.every(([, value]) => value === 30)).toBe(true);
    const times = api1Series.points.map(([t]) => t);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times.at(-1)!).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('a range whose step would exceed 11,000 points per series is asked with a coarser step', async () => {
    // Two days at one point a second is 172,800 points: Prometheus refuses that step.
    const direct = await prom.query('db_pool_connections_active'); // control: the server answers
    expect(direct.status).toBe('success');
    const series = await open().range('db_pool_connections_active', 2 * 86_400, 1);
    expect(series).toHaveLength(2);
  });

  it("a bad query: Prometheus's own error text, in one line", async () => {
    const error = await failure(open().instant('sum(db_pool_connections_active'));
    expect(error.reason).toBe('query');
    expect(error.message).toBe(
      'Prometheus: bad_data: invalid parameter "query": 1:31: parse error: unclosed left parenthesis',
    );
  });

  it('a range vector asked as an instant query says so', async () => {
    const error = await failure(open().instant('db_pool_connections_active[1m]'));
    expect(error.reason).toBe('query');
    expect(error.message).toMatch(/range vector/);
  });
});

describe('Prometheus target: HTTPS with a corporate CA and basic auth (real Prometheus)', () => {
  const secure = (over: Partial<PrometheusSpec> = {}): PrometheusTarget =>
    open({ url: secureProm.url, auth: { user: USER, password: PASSWORD }, ...over });

  it('fails without the CA, naming --prometheus-ca, and works with it', async () => {
    const error = await failure(secure().instant('db_pool_connections_max'));
    expect(error.reason).toBe('tls');
    expect(error.message).toMatch(/certificate not trusted .*--prometheus-ca FILE/);

    const samples = await secure({ caFile: ca.caFile }).instant('sum(db_pool_connections_max)');
    expect(samples).toEqual([{ labels: {}, value: 60 }]);
  });

  it('a CA file of another CA is no way in', async () => {
    const error = await failure(
      secure({ caFile: otherCa.caFile }).instant('sum(db_pool_connections_max)'),
    );
    expect(error.reason).toBe('tls');
  });

  it('basic auth from the URL is sent, and the password is nowhere in the label or errors', async () => {
    const resolved = resolvePrometheus(
      {
        prometheus: secureProm.url.replace('https://', `https://${USER}:${PASSWORD}@`),
        prometheusCa: ca.caFile,
        timeoutMs: 5_000,
      },
      {},
    )!;
    expect(resolved.url).toBe(`${secureProm.url}/`);
    const target = openPrometheus(resolved, httpClient({ caFile: resolved.caFile }));
    expect(await target.instant('sum(db_pool_connections_max)')).toEqual([
      { labels: {}, value: 60 },
    ]);
    expect(target.label).toBe(`${secureProm.url}/`);
    const wrong = await failure(
      secure({ caFile: ca.caFile, auth: { user: USER, password: 'nope-wrong' } }).instant('1'),
    );
    expect(wrong.message).toMatch(/HTTP 401/);
    expect(wrong.message).not.toContain('nope-wrong');
  });
});

describe('Prometheus target: failures, each one line', () => {
  let stubs: HttpStub[] = [];
  const stub = async (...args: Parameters<typeof startHttpStub>): Promise<HttpStub> => {
    const s = await startHttpStub(...args);
    stubs.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(stubs.map((s) => s.close()));
    stubs = [];
  });

  it('nothing listening: "unreachable (connection refused)"', async () => {
    const port = await freePort();
    const error = await failure(open({ url: `http://127.0.0.1:${port}` }).instant('up'));
    expect(error.reason).toBe('unreachable');
    expect(error.message).toBe(
      `Prometheus http://127.0.0.1:${port}/api/v1/query: unreachable (connection refused)`,
    );
  });

  it('a 503 from a proxy: "HTTP 503" and the first line of its body', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('upstream connect error or disconnect/reset before headers\nmore detail\n');
    });
    const error = await failure(open({ url: s.url }).instant('up'));
    expect(error.reason).toBe('http');
    expect(error.message).toBe(
      `Prometheus ${s.url}: HTTP 503 (upstream connect error or disconnect/reset before headers)`,
    );
  });

  it("Prometheus's own 503 (a query that timed out inside it): its error text", async () => {
    const s = await stub((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'error',
          errorType: 'timeout',
          error: 'query timed out in expression evaluation',
        }),
      );
    });
    const error = await failure(open({ url: s.url }).instant('up'));
    expect(error.message).toBe('Prometheus: timeout: query timed out in expression evaluation');
  });

  it('garbled answers: HTML, JSON of another shape, a cut-off body', async () => {
    const bodies: [contentType: string, body: string, expected: RegExp][] = [
      ['text/html', '<html><body>Login</body></html>', /garbled\): text\/html: <html><body>Login/],
      ['application/json', '{"hello":"world"}', /garbled\): application\/json: \{"hello"/],
      ['application/json', '{"status":"success","data":{"resultType":"vec', /garbled/],
      [
        'application/json',
        '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}',
        /garbled\): a sample value "abc"/,
      ],
      ['', '', /garbled\): an empty body/],
    ];
    let next = 0;
    const s = await stub((_req, res) => {
      const [type, body] = bodies[next++]!;
      res.writeHead(200, type ? { 'content-type': type } : {});
      res.end(body);
    });
    for (const [, , expected] of bodies) {
      const error = await failure(open({ url: s.url }).instant('up'));
      expect(error.reason).toBe('garbled');
      expect(error.message).toMatch(
        /^Prometheus http:\/\/127\.0\.0\.1:\d+: not a Prometheus answer \(garbled\)/,
      );
      expect(error.message).toMatch(expected);
    }
  });

  it('a server that accepts and never answers: "timeout" after the timeout, not later', async () => {
    const s = await stub(() => undefined);
    const started = Date.now();
    const error = await failure(open({ url: s.url, timeoutMs: 700 }).instant('up'));
    const took = Date.now() - started;
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe(`Prometheus ${s.url}/api/v1/query: no answer within 700ms`);
    expect(took).toBeGreaterThanOrEqual(700 - 300); // timers may seem early under load
    expect(took).toBeLessThan(700 + 3_000); // slack for a loaded machine; undici's own limit is 300 s
  });

  it('an HTTPS address whose TLS handshake never completes: "timeout" too (the connect phase)', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const started = Date.now();
      const error = await failure(
        open({ url: `https://127.0.0.1:${port}`, timeoutMs: 700 }).instant('up'),
      );
      expect(error.reason).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(700 + 3_000); // undici's connect limit is 10 s
      // An abort while the handshake hangs ends the call at once, too.
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const abortedAt = Date.now();
      const aborted = await failure(
        open({ url: `https://127.0.0.1:${port}`, timeoutMs: 20_000 }).instant('up', {
          signal: controller.signal,
        }),
      );
      expect(aborted.reason).toBe('aborted');
      expect(Date.now() - abortedAt).toBeLessThan(3_000);
    } finally {
      silent.close();
    }
  });

  it('a server that sends headers and then stalls the body: "timeout" too', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"success","data":');
    });
    const started = Date.now();
    const error = await failure(open({ url: s.url, timeoutMs: 700 }).instant('up'));
    expect(error.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(700 + 3_000);
  });

  it('an abort (Ctrl-C) stops the request at once: reason "aborted"', async () => {
    const s = await stub(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await failure(
      open({ url: s.url, timeoutMs: 10_000 }).instant('up', { signal: controller.signal }),
    );
    expect(error.reason).toBe('aborted');
  });

  it('the bearer token is sent as a header, and no label or error shows it — even echoed back', async () => {
    const s = await stub((req, res) => {
      // A proxy that echoes what it was sent, the worst case for an error message.
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`bad gateway: authorization was ${req.headers.authorization}`);
    });
    const target = open({ url: `${s.url}/prom/?tenant=a`, auth: { bearer: TOKEN } });
    const error = await failure(target.instant('up'));
    expect(s.requests.at(-1)).toMatchObject({
      method: 'POST',
      url: '/prom/api/v1/query?tenant=a',
      body: 'query=up',
    });
    expect(s.requests.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(s.requests.at(-1)!.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(error.message).toBe(
      `Prometheus ${s.url}/prom/?tenant=a: HTTP 502 (bad gateway: authorization was Bearer ***)`,
    );
    expect(target.label).not.toContain(TOKEN);
  });

  it('a range query posts start, end and step as a form', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'success',
          data: {
            resultType: 'matrix',
            result: [
              {
                metric: { pod: 'a' },
                values: [
                  [100, '1'],
                  [160, 'NaN'],
                ],
              },
            ],
          },
        }),
      );
    });
    const before = Date.now() / 1000;
    const series = await open({ url: s.url }).range('rate(x[1m])', 3600, 60);
    expect(series).toHaveLength(1);
    expect(series[0]!.labels).toEqual({ pod: 'a' });
    expect(series[0]!.points[0]).toEqual([100, 1]);
    expect(series[0]!.points[1]![1]).toBeNaN();
    const form = new URLSearchParams(s.requests.at(-1)!.body);
    expect(s.requests.at(-1)!.url).toBe('/api/v1/query_range');
    expect(form.get('query')).toBe('rate(x[1m])');
    expect(form.get('step')).toBe('60');
    const end = Number(form.get('end'));
    expect(end).toBeGreaterThanOrEqual(before);
    expect(end - Number(form.get('start'))).toBeCloseTo(3600, 3);
  });
});

describe('resolvePrometheus: flags, environment, auth, CA file', () => {
  const caPath = (): string => {
    const file = path.join(dir, 'ok-ca.pem');
    writeFileSync(file, ca.caPem);
    return file;
  };

  it('nothing asked: undefined', () => {
    expect(resolvePrometheus({ timeoutMs: 5000 }, {})).toBeUndefined();
    expect(resolvePrometheus({ timeoutMs: 5000 }, { PROMETHEUS_URL: '' })).toBeUndefined();
  });

  it('--prometheus wins over PROMETHEUS_URL and says where it came from', () => {
    expect(
      resolvePrometheus(
        { prometheus: 'http://flag:9090', timeoutMs: 3000 },
        { PROMETHEUS_URL: 'http://env:9090' },
      ),
    ).toEqual({ url: 'http://flag:9090/', timeoutMs: 3000, from: '--prometheus' });
    expect(
      resolvePrometheus({ timeoutMs: 3000 }, { PROMETHEUS_URL: 'http://env:9090/prom' }),
    ).toEqual({ url: 'http://env:9090/prom', timeoutMs: 3000, from: 'PROMETHEUS_URL' });
  });

  it('PROMETHEUS_TOKEN becomes a bearer token', () => {
    expect(
      resolvePrometheus({ prometheus: 'https://p', timeoutMs: 1 }, { PROMETHEUS_TOKEN: TOKEN })
        ?.auth,
    ).toEqual({ bearer: TOKEN });
  });

  it("the URL's userinfo moves into auth (decoded) and leaves the URL", () => {
    const resolved = resolvePrometheus(
      { prometheus: 'https://ops:p%40ss%3Aword@prom.example:9090/x#frag', timeoutMs: 1 },
      {},
    );
    expect(resolved).toEqual({
      url: 'https://prom.example:9090/x',
      auth: { user: 'ops', password: 'p@ss:word' },
      timeoutMs: 1,
      from: '--prometheus',
    });
  });

  it('userinfo and PROMETHEUS_TOKEN together: a usage error, without the password', () => {
    expect(() =>
      resolvePrometheus(
        { prometheus: 'https://ops:hunter2@p', timeoutMs: 1 },
        { PROMETHEUS_TOKEN: TOKEN },
      ),
    ).toThrowError(
      /^--prometheus has a user and password and PROMETHEUS_TOKEN is set: use one of them$/,
    );
  });

  it('not a URL, or not http(s): a one-line usage error that hides the password', () => {
    const bad = (prometheus: string): Error => {
      try {
        resolvePrometheus({ prometheus, timeoutMs: 1 }, {});
      } catch (error) {
        expect((error as Error).name).toBe('UsageError');
        expect((error as Error).message).not.toContain('\n');
        return error as Error;
      }
      throw new Error(`no error for ${prometheus}`);
    };
    expect(bad('prometheus:9090').message).toBe(
      '--prometheus: expected an http:// or https:// URL, got prometheus:// (prometheus:9090)',
    );
    expect(bad('ftp://ops:hunter2@p').message).toBe(
      '--prometheus: expected an http:// or https:// URL, got ftp:// (ftp://ops:***@p)',
    );
    expect(bad('http://ops:hunter2@[bad').message).toMatch(/^--prometheus: not a URL: /);
    expect(bad('http://ops:hunter2@[bad').message).not.toContain('hunter2');
    expect(() => resolvePrometheus({ timeoutMs: 1 }, { PROMETHEUS_URL: 'nope' })).toThrowError(
      /^PROMETHEUS_URL: not a URL/,
    );
  });

  it('--prometheus-ca: must exist, be readable and hold a PEM certificate', () => {
    const flags = { prometheus: 'https://p', timeoutMs: 1 };
    expect(resolvePrometheus({ ...flags, prometheusCa: caPath() }, {})?.caFile).toBe(caPath());
    const missing = path.join(dir, 'missing.pem');
    expect(() => resolvePrometheus({ ...flags, prometheusCa: missing }, {})).toThrowError(
      `--prometheus-ca ${missing}: cannot read it (ENOENT)`,
    );
    expect(() => resolvePrometheus({ ...flags, prometheusCa: dir }, {})).toThrowError(
      `--prometheus-ca ${dir}: cannot read it (not a file)`,
    );
    const notPem = path.join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    expect(() => resolvePrometheus({ ...flags, prometheusCa: notPem }, {})).toThrowError(
      `--prometheus-ca ${notPem}: no PEM certificate in it`,
    );
    expect(() => resolvePrometheus({ prometheusCa: caPath(), timeoutMs: 1 }, {})).toThrowError(
      '--prometheus-ca needs a Prometheus: --prometheus URL or PROMETHEUS_URL',
    );
  });
});
