// The Prometheus target: instant and range queries over the HTTP API, through the HTTP seam.
// Every failure is a PrometheusError of one line — Prometheus's own text for a bad query,
// "unreachable", "HTTP 503 …", "not a Prometheus answer (garbled)" — so a step that asked
// Prometheus fails alone and says why. Credentials (a bearer token from PROMETHEUS_TOKEN, basic
// auth from the URL) travel in the Authorization header only: never in a label, a message or
// the URL poolctl prints.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { HttpClient, HttpError } from '../io/http.js';
import { sanitizeInline } from '../io/sanitize.js';
import { redactUrl } from '../transcript/redact.js';

export interface PrometheusSpec {
  /** Base URL WITHOUT userinfo, e.g. `https://prom.example:9090` or `http://gw/prometheus`. */
  url: string;
  auth?: { bearer: string } | { user: string; password: string };
  /** A PEM file of CAs trusted in addition to the usual ones (--prometheus-ca). */
  caFile?: string;
  /** Per request: connect, headers and body. */
  timeoutMs: number;
  /** Where the URL came from: '--prometheus' | 'PROMETHEUS_URL'. */
  from: string;
}

/**
 * One element of an instant vector (or the scalar, with no labels). `value` may be NaN, Infinity
 * or -Infinity: Prometheus sends them as "NaN", "+Inf", "-Inf" (JSON has no such numbers). NaN
 * comes from 0/0 (a pool whose max is 0, a rate over no samples): callers must treat it as "not
 * measured", never as healthy, and must not compare it (every comparison with NaN is false);
 * ±Infinity from x/0 is a real, extreme reading.
 */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

/** One series of a range query; `points` in time order, values as in PromSample. */
export interface PromSeries {
  labels: Record<string, string>;
  points: [unixSeconds: number, value: number][];
}

export interface PrometheusTarget {
  /** The URL, safe to print (no userinfo; secret-looking query parameters masked). */
  readonly label: string;
  /** An instant query at the current time. An empty result is [] (the caller decides what it means). */
  instant(query: string, opts?: { signal?: AbortSignal }): Promise<PromSample[]>;
  /**
   * A range query over the last `rangeS` seconds, every `stepS` seconds. The step is raised to
   * range / 11,000 when smaller: Prometheus refuses more points per series than that.
   */
  range(
    query: string,
    rangeS: number,
    stepS: number,
    opts?: { signal?: AbortSignal },
  ): Promise<PromSeries[]>;
}

export type PrometheusErrorReason =
  'query' | 'http' | 'garbled' | 'unreachable' | 'timeout' | 'tls' | 'aborted';

/** One line, never credentials. `reason` says which kind of failure it was. */
export class PrometheusError extends Error {
  override name = 'PrometheusError';
  constructor(
    message: string,
    readonly reason: PrometheusErrorReason = 'garbled',
  ) {
    super(message);
  }
}

/** Prometheus's own limit on the points of one series in a range query. */
export const MAX_POINTS_PER_SERIES = 11_000;

/** The longest piece of a server's body quoted in an error. */
const QUOTE_MAX = 120;

export function openPrometheus(spec: PrometheusSpec, http: HttpClient): PrometheusTarget {
  const base = new URL(spec.url);
  const label = redactUrl(spec.url);
  const secrets = spec.auth ? ['bearer' in spec.auth ? spec.auth.bearer : spec.auth.password] : [];
  const headers: Record<string, string> = { accept: 'application/json' };
  if (spec.auth && 'bearer' in spec.auth) headers.authorization = `Bearer ${spec.auth.bearer}`;
  else if (spec.auth) {
    const pair = `${spec.auth.user}:${spec.auth.password}`;
    headers.authorization = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
  }

  /** A message can quote a server's body: a proxy may echo what it was sent. */
  const fail = (message: string, reason: PrometheusErrorReason): PrometheusError => {
    let text = sanitizeInline(message).replace(/\s+/g, ' ').trim();
    for (const secret of secrets) if (secret.length >= 3) text = text.split(secret).join('***');
    return new PrometheusError(text, reason);
  };

  async function ask(
    api: 'query' | 'query_range',
    form: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<{ resultType: string; result: unknown }> {
    const url = new URL(base);
    url.pathname = `${base.pathname.replace(/\/+$/, '')}/api/v1/${api}`;
    let response;
    try {
      response = await http.request({
        method: 'POST',
        url,
        headers,
        form,
        timeoutMs: spec.timeoutMs,
        signal,
      });
    } catch (error) {
      const reason = (error as Partial<HttpError>).reason;
      if (reason === undefined) throw error;
      // HttpError's message names the address and why; it never holds a header.
      throw fail(`Prometheus ${(error as Error).message}`, reason);
    }

    const answer = parseJson(response.body);
    const isApiAnswer =
      isObject(answer) && (answer.status === 'success' || answer.status === 'error');
    if (isApiAnswer && answer.status === 'error') {
      // A bad query (400 bad_data), one that failed to run (422 execution), a timeout inside
      // Prometheus (503 timeout): Prometheus's own words are the most useful line there is.
      const type = typeof answer.errorType === 'string' ? answer.errorType : 'error';
      const text = typeof answer.error === 'string' ? answer.error : 'no error text';
      throw fail(`Prometheus: ${type}: ${text}`, type === 'bad_data' ? 'query' : 'http');
    }
    if (response.status < 200 || response.status > 299) {
      const quote = firstLine(response.body);
      throw fail(
        `Prometheus ${label}: HTTP ${response.status}${quote ? ` (${quote})` : ''}`,
        'http',
      );
    }
    if (!isApiAnswer) {
      throw fail(
        `Prometheus ${label}: not a Prometheus answer (garbled): ${describeBody(response)}`,
        'garbled',
      );
    }
    const data = answer.data;
    if (!isObject(data) || typeof data.resultType !== 'string' || !Array.isArray(data.result)) {
      throw fail(
        `Prometheus ${label}: not a Prometheus answer (garbled): no data.resultType/result`,
        'garbled',
      );
    }
    return { resultType: data.resultType, result: data.result };
  }

  const garbled = (what: string): PrometheusError =>
    fail(`Prometheus ${label}: not a Prometheus answer (garbled): ${what}`, 'garbled');

  return {
    label,

    async instant(query, opts = {}) {
      const { resultType, result } = await ask('query', { query }, opts.signal);
      if (resultType === 'scalar') return [{ labels: {}, value: sampleValue(result, garbled) }];
      if (resultType === 'matrix') {
        throw fail(
          `Prometheus: the query returns a range vector; ask an instant vector (drop the [range]): ${query}`,
          'query',
        );
      }
      if (resultType !== 'vector') throw garbled(`resultType ${resultType} where a number was due`);
      return (result as unknown[]).map((item) => {
        if (!isObject(item)) throw garbled('a vector element is not an object');
        return { labels: labelsOf(item.metric, garbled), value: sampleValue(item.value, garbled) };
      });
    },

    async range(query, rangeS, stepS, opts = {}) {
      const end = Date.now() / 1000;
      const step = Math.max(stepS, rangeS / MAX_POINTS_PER_SERIES);
      const form = {
        query,
        start: String(end - rangeS),
        end: String(end),
        step: String(step),
      };
      const { resultType, result } = await ask('query_range', form, opts.signal);
      if (resultType !== 'matrix') throw garbled(`resultType ${resultType} for a range query`);
      return (result as unknown[]).map((item) => {
        if (!isObject(item) || !Array.isArray(item.values)) {
          throw garbled('a matrix element has no values');
        }
        const points = item.values.map((pair): [number, number] => {
          if (!Array.isArray(pair) || typeof pair[0] !== 'number') {
            throw garbled('a point is not [time, "value"]');
          }
          return [pair[0], sampleValue(pair, garbled)];
        });
        return { labels: labelsOf(item.metric, garbled), points };
      });
    },
  };
}

/** `[time, "12.5"]` → 12.5; "NaN", "+Inf" and "-Inf" as the numbers they name. */
function sampleValue(pair: unknown, garbled: (what: string) => Error): number {
  if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[1] !== 'string') {
    throw garbled('a sample is not [time, "value"]');
  }
  const text = pair[1];
  if (text === 'NaN') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const value = Number(text);
  if (text.trim() === '' || Number.isNaN(value)) throw garbled(`a sample value "${text}"`);
  return value;
}

function labelsOf(metric: unknown, garbled: (what: string) => Error): Record<string, string> {
  if (metric === undefined) return {};
  if (!isObject(metric)) throw garbled('a metric is not a label set');
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(metric)) {
    if (typeof value !== 'string') throw garbled(`label ${name} is not a string`);
    labels[name] = value;
  }
  return labels;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function firstLine(body: string): string {
  const line = sanitizeInline(body.trim().split('\n', 1)[0] ?? '').trim();
  return line.length > QUOTE_MAX ? `${line.slice(0, QUOTE_MAX)}…` : line;
}

function describeBody(response: { contentType: string; body: string }): string {
  const type = response.contentType || 'no content type';
  if (response.body.trim() === '') return `an empty body (${type})`;
  return `${type}: ${firstLine(response.body)}`;
}

/**
 * The Prometheus target the flags and the environment ask for, or undefined when none does:
 * `--prometheus URL`, else PROMETHEUS_URL; a bearer token from PROMETHEUS_TOKEN, or basic auth
 * from the URL's userinfo (moved into `auth`, stripped from `url`); `--prometheus-ca FILE`.
 */
export function resolvePrometheus(
  flags: { prometheus?: string; prometheusCa?: string; timeoutMs: number },
  env: NodeJS.ProcessEnv,
): PrometheusSpec | undefined {
  const from = flags.prometheus !== undefined ? '--prometheus' : 'PROMETHEUS_URL';
  const raw = flags.prometheus ?? (env.PROMETHEUS_URL || undefined);
  if (raw === undefined) {
    if (flags.prometheusCa !== undefined) {
      throw new UsageError(
        '--prometheus-ca needs a Prometheus: --prometheus URL or PROMETHEUS_URL',
      );
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(`${from}: not a URL: "${redactUrl(raw)}" (e.g. http://prometheus:9090)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(
      `${from}: expected an http:// or https:// URL, got ${url.protocol}// (${redactUrl(raw)})`,
    );
  }

  const token = env.PROMETHEUS_TOKEN || undefined;
  let auth: PrometheusSpec['auth'];
  if (url.username || url.password) {
    if (token) {
      throw new UsageError(
        `${from} has a user and password and PROMETHEUS_TOKEN is set: use one of them`,
      );
    }
    auth = { user: decode(url.username), password: decode(url.password) };
    url.username = '';
    url.password = '';
  } else if (token) {
    auth = { bearer: token };
  }
  url.hash = '';

  const caFile = flags.prometheusCa;
  if (caFile !== undefined) checkCaFile(caFile);
  return {
    url: url.href,
    ...(auth && { auth }),
    ...(caFile !== undefined && { caFile }),
    timeoutMs: flags.timeoutMs,
    from,
  };
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Read now, so a typo is exit 2 before anything runs, not a TLS failure in the middle. */
function checkCaFile(file: string): void {
  let pem: string;
  try {
    accessSync(file, constants.R_OK);
    if (!statSync(file).isFile()) throw Object.assign(new Error(), { code: 'not a file' });
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`--prometheus-ca ${file}: cannot read it (${code})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(`--prometheus-ca ${file}: no PEM certificate in it`);
  }
}
