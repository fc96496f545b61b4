import { describe, expect, it } from 'vitest';
import { defaultRunbookFor } from '../../src/runbook/bundled.js';
import { resolveParameters } from '../../src/runbook/params.js';
import type { PromqlStep } from '../../src/runbook/types.js';
import type { Row } from '../../src/targets/types.js';
import {
  asSecondOpinion,
  isServerSide,
  poolHolderFinding,
  refusedExitCode,
  serverMeasured,
} from '../../src/wizard/exporter.js';
import { evaluateFindings } from '../../src/wizard/findings.js';
import type { Finding } from '../../src/wizard/model.js';
import { sidesOf } from '../../src/wizard/sides.js';

const finding = (
  id: string,
  step: string,
  severity: Finding['severity'] = 'critical',
): Finding => ({
  id,
  severity,
  message: `${id} fired`,
  step,
  suggest: ['kill-idle'],
  count: 1,
});

describe('the exporter as a second opinion', () => {
  it('downgrades to info, says so, and suggests nothing', () => {
    const [f] = asSecondOpinion([finding('exporter-server-critical', 'server-exporter')]);
    expect(f).toMatchObject({
      severity: 'info',
      message: 'Second opinion: exporter-server-critical fired',
      suggest: [],
    });
  });

  it('the server counts as measured only from its own utilization number', () => {
    expect(serverMeasured({ utilization_percent: 12 })).toBe(true);
    expect(serverMeasured({ exporter_utilization_percent: 100 })).toBe(false);
  });

  it('a refused run exits 4 only while a critical finding stands, else 3: never 0', () => {
    expect(refusedExitCode('critical')).toBe(4);
    for (const status of ['healthy', 'warning', 'unknown'] as const)
      expect(refusedExitCode(status)).toBe(3);
  });

  it('both bundled runbooks read the server from its exporter, in diagnose and verify', () => {
    for (const engine of ['postgres', 'mysql'] as const) {
      const runbook = defaultRunbookFor(engine);
      expect(runbook.diagnose.filter(isServerSide).map((s) => s.id)).toEqual(['server-exporter']);
      expect(runbook.verify.filter(isServerSide).map((s) => s.id)).toEqual([
        'verify-server-exporter',
      ]);
    }
  });
});

describe("the exporter's finding rules (bundled runbooks)", () => {
  const fired = (engine: 'postgres' | 'mysql', row: Row) => {
    const runbook = defaultRunbookFor(engine);
    const step = runbook.diagnose.find((s) => s.id === 'server-exporter') as PromqlStep;
    const values = resolveParameters(runbook.parameters, {}, runbook.id);
    return evaluateFindings(step.findings, [row], step.id, values, runbook.parameters);
  };
  const base = { server: 'db1:9187', connections: 17, usable_connections: 17, max_connections: 20 };

  it('full from a current reading: critical, with the numbers and where they come from', () => {
    const [f] = fired('postgres', { ...base, utilization_percent: 100, up: 1 });
    expect(f!.id).toBe('exporter-server-critical');
    expect(f!.message).toBe(
      'The server db1:9187 is at 100% of its usable connections (17 of 17; max_connections 20), read from postgres_exporter: new connections fail',
    );
  });

  it('the exporter refused too: its last reading decides, and is called one', () => {
    const ids = fired('postgres', {
      ...base,
      utilization_percent: null,
      connections: null,
      up: 0,
      last_utilization_percent: 100,
      last_connections: 17,
    }).map((f) => [f.id, f.severity]);
    expect(ids).toEqual([
      ['exporter-refused-full', 'critical'],
      ['exporter-down', 'warning'],
    ]);
  });

  it('refused too with no reading left in the lookback: no verdict, only that it is down', () => {
    const ids = fired('mysql', {
      server: 'db1:9104',
      utilization_percent: null,
      refused_per_s: null,
      up: 0,
      last_utilization_percent: null,
    }).map((f) => f.id);
    expect(ids).toEqual(['exporter-down']);
  });

  it('MySQL: connects refused for max_connections are critical even below the threshold', () => {
    const ids = fired('mysql', {
      server: 'db1:9104',
      utilization_percent: 80,
      connections: 80,
      usable_connections: 100,
      refused_per_s: 0.5,
      up: 1,
    }).map((f) => f.id);
    expect(ids).toEqual(['exporter-refusing']);
  });
});

describe('which side, when the server is read from its exporter', () => {
  const runbook = defaultRunbookFor('postgres');

  it('refused, the exporter says full: the server side, said to come from the exporter', () => {
    const sides = sidesOf(
      runbook,
      [finding('exporter-server-critical', 'server-exporter')],
      {
        exporter_utilization_percent: 100,
        exporter_connections: 97,
        exporter_usable_connections: 97,
      },
      true,
    );
    expect(sides.side).toBe('server');
    expect(sides.checked).toEqual(['exporter']);
    expect(sides.explanation).toContain('(read from its exporter: 97 of 97 usable connections;');
  });

  it("the server's own reading is critical: no word of the exporter", () => {
    const sides = sidesOf(
      runbook,
      [finding('pool-critical', 'utilization')],
      { utilization_percent: 100, exporter_utilization_percent: 100 },
      true,
    );
    expect(sides.side).toBe('server');
    expect(sides.checked).toEqual(['database', 'exporter']);
    expect(sides.explanation).not.toContain('exporter');
  });

  it("an application's full pool with the server's room read from the exporter", () => {
    const sides = sidesOf(
      runbook,
      [finding('app-pool-critical', 'app-pool')],
      { exporter_utilization_percent: 40, app_pool_utilization_percent: 100 },
      true,
    );
    expect(sides.side).toBe('application');
    expect(sides.explanation).toContain('its exporter shows it at 40%');
  });
});

describe('the replica whose pool holds the server, when its sessions cannot be read', () => {
  const steps = defaultRunbookFor('postgres').diagnose;
  const pools = (rows: Row[]) => [
    {
      id: 'app-pool',
      title: 'Application pools, per replica',
      why: '',
      kind: 'promql' as const,
      status: 'ok' as const,
      durationMs: 1,
      rows,
      findings: [],
    },
  ];

  it('named relative to the others, with its numbers and the restart first', () => {
    const f = poolHolderFinding(
      pools([
        { replica: 'api-1', active: 1 },
        { replica: 'api-2', active: 14 },
        { replica: 'api-3', active: 2 },
      ]),
      { exporter_connections: 17 },
      steps,
    )!;
    expect(f.message).toMatch(
      /^Replica api-2's pool holds 14 of the 17 connections .* \(the next, api-3, holds 2\)/,
    );
    expect(f.suggest).toEqual(['restart-app', 'rollback-app']);
  });

  it('nobody when the pools share the server evenly, or hold little of it', () => {
    const even = pools([
      { replica: 'api-1', active: 30 },
      { replica: 'api-2', active: 30 },
      { replica: 'api-3', active: 30 },
    ]);
    expect(poolHolderFinding(even, { exporter_connections: 97 }, steps)).toBeUndefined();
    const little = pools([
      { replica: 'api-1', active: 0 },
      { replica: 'api-2', active: 10 },
    ]);
    expect(poolHolderFinding(little, { exporter_connections: 97 }, steps)).toBeUndefined();
    // Without the exporter's count there is nothing to hold a share of.
    expect(poolHolderFinding(little, {}, steps)).toBeUndefined();
  });
});
