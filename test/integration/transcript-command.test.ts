import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli } from '../helpers/run-cli.js';
import { holdSessions, type HeldSessions } from '../helpers/sessions.js';

interface Report {
  status: string;
  incident: string;
  metrics: Record<string, number>;
  actions: {
    id: string;
    results: { pid: number; outcome: string }[];
    before?: Record<string, number>;
    after?: Record<string, number>;
  }[];
  transcript: string;
}

interface Export {
  incident: string;
  events: { type: string }[];
  summary: {
    status: string;
    exitCode: number;
    runs: { command: string; status: string; exitCode: number }[];
    before: { label: string; metrics: Record<string, number> };
    after: { label: string; metrics: Record<string, number> };
    actions: { executed: number; outcomes: Record<string, number> };
    thresholds: { warning?: number; critical?: number };
    measurements: unknown[];
  };
}

const INCIDENT = 'inc-export-it';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: PgServer;
let held: HeldSessions | undefined;
let state: string;
let diagnosed: Report;
let mitigated: Report;
const env = () => ({ XDG_STATE_HOME: state });

// One real incident for every test below: a diagnose, then a kill of the idle sessions, both
// with the same --incident, through the built CLI as a CI job would run them.
beforeAll(async () => {
  server = await startPostgres({ maxConnections: 30 });
  await server.psql('GRANT pg_read_all_stats TO app;');
  held = await holdSessions(server.appUrl, { idle: 8, idleInTx: 2, long: 1 });
  await sleep(1200); // idle for more than kill_idle_after=1s
  state = mkdtempSync(join(tmpdir(), 'poolctl-transcript-it-'));
  const d = await runCli(
    ['diagnose', '--pg', server.appUrl, '--output', 'json', '--incident', INCIDENT],
    { env: env() },
  );
  expect(d.stderr).toBe('');
  diagnosed = JSON.parse(d.stdout) as Report;
  const m = await runCli(
    [
      'mitigate',
      '--pg',
      server.appUrl,
      '--action',
      'kill-idle',
      '--set',
      'kill_idle_after=1s',
      '--yes',
      '--incident',
      INCIDENT,
      '--output',
      'json',
    ],
    { env: env() },
  );
  expect(m.stderr).toBe('');
  expect(m.code).toBe(0);
  mitigated = JSON.parse(m.stdout) as Report;
});

afterAll(async () => {
  await held?.close();
  await server?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe('poolctl transcript on a real incident (diagnose + mitigate on PostgreSQL)', () => {
  it('both runs wrote one transcript, and list shows it', async () => {
    expect(diagnosed.transcript).toBe(mitigated.transcript);
    expect(diagnosed.transcript).toBe(join(state, 'poolctl', 'incidents', `${INCIDENT}.jsonl`));
    const r = await runCli(['transcript', 'list', '--output', 'json'], { env: env() });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const { incidents } = JSON.parse(r.stdout) as { incidents: Record<string, unknown>[] };
    expect(incidents).toHaveLength(1);
    expect(incidents[0]).toMatchObject({
      incident: INCIDENT,
      command: 'diagnose, mitigate',
      status: mitigated.status,
      exitCode: 0,
      path: diagnosed.transcript,
    });
  });

  it('exports JSON whose summary has the numbers the runs printed', async () => {
    const r = await runCli(['transcript', 'export', INCIDENT, '--format', 'json'], { env: env() });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const doc = JSON.parse(r.stdout) as Export;
    expect(doc.incident).toBe(INCIDENT);
    expect(doc.events.filter((e) => e.type === 'session.start')).toHaveLength(2);
    expect(doc.events.filter((e) => e.type === 'session.end')).toHaveLength(2);
    const s = doc.summary;
    expect(s.runs.map((run) => [run.command, run.status, run.exitCode])).toEqual([
      ['diagnose', diagnosed.status, 0],
      ['mitigate', mitigated.status, 0],
    ]);
    expect(s.status).toBe(mitigated.status);
    expect(s.exitCode).toBe(0);
    // Before = what diagnose measured; after = what mitigate measured after the kill.
    expect(s.before).toMatchObject({ label: 'diagnose', metrics: diagnosed.metrics });
    expect(s.after).toMatchObject({ label: 'after kill-idle', metrics: mitigated.metrics });
    expect(mitigated.actions[0]!.after).toEqual(mitigated.metrics);
    const terminated = mitigated.actions[0]!.results.filter((x) => x.outcome === 'terminated');
    expect(terminated.map((x) => x.pid).sort()).toEqual([...held!.byKind.idle].sort());
    expect(s.actions).toEqual({
      executed: 1,
      declined: 0,
      dryRun: 0,
      outcomes: { terminated: held!.byKind.idle.length },
    });
    // The bundled runbook's defaults: nobody overrode them.
    expect(s.thresholds).toEqual({ warning: 90, critical: 95 });
    expect(s.measurements).toHaveLength(3); // diagnose, before and after kill-idle
  });

  it('exports Markdown with the same before → after numbers and the victims', async () => {
    const r = await runCli(['transcript', 'export', diagnosed.transcript], { env: env() });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const md = r.stdout;
    const b = diagnosed.metrics;
    const a = mitigated.metrics;
    expect(md.split('\n')[0]).toMatch(
      new RegExp(
        `^# Incident ${INCIDENT}: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d → \\d\\d:\\d\\d:\\d\\d UTC$`,
      ),
    );
    expect(md).toContain(
      `- **Runs:** diagnose (non-interactive) → ${diagnosed.status}, exit 0; mitigate (non-interactive) → ${mitigated.status}, exit 0`,
    );
    for (const row of [
      `| utilization | ${b.utilization_percent}% | ${a.utilization_percent}% |`,
      `| connections | ${b.connections} of ${b.usable_connections} | ${a.connections} of ${a.usable_connections} |`,
      `| idle | ${b.idle} | ${a.idle} |`,
      `| idle in transaction | ${b.idle_in_transaction} | ${a.idle_in_transaction} |`,
      `| active | ${b.active} | ${a.active} |`,
    ])
      expect(md).toContain(row);
    const n = held!.byKind.idle.length;
    expect(md).toContain(
      `- **Selected:** ${n} sessions\n- **Asked:** "Terminate idle connections: terminate these ${n} sessions?" → yes (answered by --yes)\n- **Outcome:** terminated ${n}`,
    );
    for (const pid of held!.byKind.idle)
      expect(md).toMatch(
        new RegExp(
          `^\\| ${pid} \\| app \\| \\w+ \\| 127\\.0\\.0\\.1 \\| idle \\| [\\d.]+ \\| terminated \\|`,
          'm',
        ),
      );
    for (const section of [
      'Timeline',
      'Evidence',
      'Actions',
      'Findings',
      'To do by hand',
      'Operator notes',
    ])
      expect(md).toContain(`\n## ${section}\n`);
  });

  it('writes the HTML page with -o, mode 0600, with the chart and the numbers', async () => {
    const out = join(state, 'incident.html');
    const r = await runCli(['transcript', 'export', INCIDENT, '-o', out], { env: env() });
    expect(r).toEqual(expect.objectContaining({ code: 0, stdout: '', stderr: '' }));
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const page = readFileSync(out, 'utf8');
    expect(page).toContain(
      `<tr><td>utilization</td><td class="n">${diagnosed.metrics.utilization_percent}%</td><td class="n">${mitigated.metrics.utilization_percent}%</td></tr>`,
    );
    const svg = /<svg[^>]*>.*<\/svg>/s.exec(page)?.[0] ?? '';
    expect(svg.match(/<circle /g)).toHaveLength(3);
    expect(svg).toMatch(/>critical 95%</);
    expect(page).not.toMatch(/<script/i);
  });

  it('shows the timeline in plain columns', async () => {
    const r = await runCli(['transcript', 'show', INCIDENT], { env: env() });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const n = held!.byKind.idle.length;
    expect(r.stdout).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d +\\+\\d\\d:\\d\\d  action   kill-idle \\(terminate\\): terminated ${n} of ${n} · utilization `,
        'm',
      ),
    );
    expect(r.stdout).not.toContain('\u001b[');
  });

  it('still exports after a crash tore the last line, with a warning', async () => {
    const torn = join(state, 'torn.jsonl');
    appendFileSync(torn, readFileSync(diagnosed.transcript));
    appendFileSync(torn, '{"type":"step.start","ts":"2026-');
    const r = await runCli(['transcript', 'export', torn, '--format', 'md'], { env: env() });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `poolctl: warning: ${torn}: the last line is incomplete (a write torn by a crash?): skipped`,
    );
    expect(r.stdout).toContain(`| utilization | ${diagnosed.metrics.utilization_percent}% |`);
  });

  it('an unknown incident is exit 2 with one line naming it', async () => {
    const r = await runCli(['transcript', 'export', 'inc-nope', '--format', 'html'], {
      env: env(),
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `poolctl: no transcript "inc-nope": no such file, and no incident of that id in ${join(state, 'poolctl', 'incidents')} (see: poolctl transcript list)\n`,
    );
  });
});
