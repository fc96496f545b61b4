import { promqlExecutor } from '../executors/promql.js';
import { sanitizeInline } from '../io/sanitize.js';
import { renderArgs } from '../runbook/render.js';
import type { PromqlStep } from '../runbook/types.js';
import { evaluateFindings } from './findings.js';
import { isServerSide } from './exporter.js';
import type { Measurement, MeasureContext } from './measure.js';
import type { Metrics } from './model.js';

/** How long a re-measurement waits for Prometheus to scrape the pools once more after a change. */
const FRESH_TIMEOUT_MS = 60_000;
const FRESH_POLL_MS = 250;

/**
 * The application's side of a before/after: the diagnose step with headline numbers (the pools
 * per replica, read through Prometheus), judged by its own finding rules, its headline the
 * fullest replica and the slowest wait. Undefined when there is no Prometheus target or no such
 * step. With `freshSinceMs` (a change's end, epoch ms) it first waits until Prometheus holds a
 * sample of every pool scraped after that moment: right after a rollout the last samples are the
 * old pods', and a measurement of them would be the "before" again.
 */
export async function measureApplication(
  ctx: MeasureContext,
  opts: { freshSinceMs?: number; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Measurement | undefined> {
  if (!ctx.targets.has('prometheus')) return undefined;
  const step = ctx.runbook.diagnose.find(
    // The application's pools, not the server as its exporter shows it (also a headline step).
    (s): s is PromqlStep => s.kind === 'promql' && s.headline !== undefined && !isServerSide(s),
  );
  if (!step) return undefined;
  try {
    if (opts.freshSinceMs !== undefined) {
      const fresh = await waitForFreshSamples(ctx, opts.freshSinceMs, opts);
      if (!fresh.ok) return { metrics: {}, findings: [], unmeasured: [fresh.why] };
    }
    const rows = await promqlExecutor.read(step, ctx);
    const findings = evaluateFindings(
      step.findings,
      rows,
      step.id,
      ctx.values,
      ctx.runbook.parameters,
    );
    const metrics: Metrics = {};
    const unmeasured: string[] = [];
    if (rows.length === 0) unmeasured.push(`"${step.title}": Prometheus returned no series`);
    for (const [name, column] of Object.entries(step.headline ?? {})) {
      const values = rows.map((row) => row[column]);
      if (values.length > 0 && values.every((v): v is number => typeof v === 'number'))
        metrics[name] = Math.max(...values);
    }
    return { metrics, findings, unmeasured };
  } catch (err) {
    const why = sanitizeInline((err as Error).message);
    return { metrics: {}, findings: [], unmeasured: [`"${step.title}" failed (${why})`] };
  }
}

/**
 * Polls `timestamp(<the pools' active metric>)` until every series Prometheus returns was scraped
 * after `sinceMs`. A pod that is gone has stale series, which Prometheus no longer returns.
 */
async function waitForFreshSamples(
  ctx: MeasureContext,
  sinceMs: number,
  opts: { signal?: AbortSignal; timeoutMs?: number },
): Promise<{ ok: true } | { ok: false; why: string }> {
  const specs = ctx.runbook.parameters;
  if (!specs.app_pool_active_metric || !specs.app_pool_selector) return { ok: true };
  const [selector] = renderArgs(
    ['{app_pool_active_metric}{{app_pool_selector}}'],
    ctx.values,
    specs,
  );
  const prometheus = await ctx.targets.prometheus();
  const timeoutMs = opts.timeoutMs ?? FRESH_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await prometheus.instant(`timestamp(${selector})`, { signal: opts.signal });
    const scraped = samples.map((s) => s.value * 1000);
    if (scraped.length > 0 && scraped.every((t) => t >= sinceMs)) return { ok: true };
    if (Date.now() >= deadline || opts.signal?.aborted) {
      return {
        ok: false,
        why: `Prometheus has scraped no pool since the change (waited ${Math.round(timeoutMs / 1000)}s for ${selector})`,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, FRESH_POLL_MS));
  }
}

/** One measurement of both sides: the numbers side by side, every finding and gap of each. */
export function bothSides(server: Measurement, app: Measurement | undefined): Measurement {
  if (!app) return server;
  return {
    metrics: { ...server.metrics, ...app.metrics },
    findings: [...server.findings, ...app.findings],
    unmeasured: [...server.unmeasured, ...app.unmeasured],
  };
}
