import { execFileSync } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRunbookFile } from '../../src/runbook/loader.js';
import { parseSetFlags, resolveParameters } from '../../src/runbook/params.js';
import { byHandCommand, renderArgs, shellLine } from '../../src/runbook/render.js';
import { targetOf } from '../../src/runbook/targets.js';
import type { Runbook, Step } from '../../src/runbook/types.js';

/** What a POSIX shell makes of a line: the argv it would pass (printed one per line, NUL-safe). */
function argvOf(line: string): string[] {
  const out = spawnSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`sh: ${out.stderr}`);
  return out.stdout.split('\0').slice(0, -1);
}

describe('shellLine', () => {
  it.each([
    [
      'plain words stay as they are',
      ['kubectl', 'rollout', 'status', 'deployment/api'],
      'kubectl rollout status deployment/api',
    ],
    ['a space', ['-l', 'app=api tier=web'], "-l 'app=api tier=web'"],
    ['a single quote', ["it's"], `'it'\\''s'`],
    ['a double quote', ['say "hi"'], `'say "hi"'`],
    ['a command substitution', ['$(rm -rf /)'], `'$(rm -rf /)'`],
    ['backticks and $VAR', ['`id` $HOME'], "'`id` $HOME'"],
    ['a semicolon', ['app=api; rm -rf /'], "'app=api; rm -rf /'"],
    ['a <PLACEHOLDER>', ['deployment/<DEPLOYMENT>'], "'deployment/<DEPLOYMENT>'"],
    ['an empty argument', [''], "''"],
    ['glob and brace characters', ['*.log', '{a,b}', '~root'], "'*.log' '{a,b}' '~root'"],
  ])('%s', (_, argv, expected) => {
    const line = shellLine(argv);
    expect(line).toBe(expected);
    // The proof: a real shell hands the program exactly these arguments, nothing run, nothing
    // redirected, nothing expanded.
    expect(argvOf(line)).toEqual(argv);
  });
});

describe('renderArgs', () => {
  const specs = {
    deployment: { type: 'string', default: 'api', description: 'd' },
    namespace: { type: 'string', description: 'n' },
    kill_idle_after: { type: 'duration', default: '5m', description: 'k' },
  } as const;

  it('fills values (durations as typed), leaves an unset one open as <NAME>, other braces alone', () => {
    const values = resolveParameters(specs, { kill_idle_after: '90' });
    expect(
      renderArgs(
        [
          'deployment/{deployment}',
          '--namespace={namespace}',
          'older={kill_idle_after}',
          '{"a":1}',
        ],
        values,
        specs,
      ),
    ).toEqual(['deployment/api', '--namespace=<NAMESPACE>', 'older=1m30s', '{"a":1}']);
  });
});

describe('byHandCommand on the bundled runbooks, with values from --set', () => {
  let pg: Runbook;
  let my: Runbook;
  beforeAll(async () => {
    pg = await loadRunbookFile('runbooks/postgres/pool-exhausted.yaml');
    my = await loadRunbookFile('runbooks/mysql/pool-exhausted.yaml');
  });
  const stepOf = (rb: Runbook, id: string): Step => {
    const step = [...rb.diagnose, ...rb.actions, ...rb.verify].find((s) => s.id === id);
    if (!step) throw new Error(`no step ${id}`);
    return step;
  };
  const render = (rb: Runbook, id: string, sets: string[] = [], known = {}) =>
    byHandCommand(
      stepOf(rb, id),
      resolveParameters(rb.parameters, parseSetFlags(sets, rb.parameters, rb.id), rb.id),
      rb.parameters,
      known,
    );

  it('promql: curl with the URL left open and the flag that would let poolctl run it', () => {
    // One query per column of the per-replica table, each line naming its column.
    const out = render(pg, 'app-pool', ['app_pool_selector=job="api"']);
    expect(out.flag).toBe('--prometheus URL');
    expect(out.lines.map((line) => line.slice(line.lastIndexOf('#')))).toEqual(
      ['utilization_percent', 'active', 'idle', 'max', 'wait_p95_ms'].map((c) => `# ${c}`),
    );
    expect(argvOf(out.lines[0]!)).toEqual([
      'curl',
      '-sG',
      '<PROMETHEUS_URL>/api/v1/query',
      '--data-urlencode',
      'query=max by (pod) (100 * db_pool_connections_active{job="api"} / db_pool_connections_max{job="api"})',
    ]);
  });

  it('promql: a known Prometheus URL is used and no flag is offered', () => {
    const out = render(pg, 'verify-app-pool', [], { prometheusUrl: 'http://prom:9090/' });
    expect(out.flag).toBeUndefined();
    expect(out.lines.at(-1)).toBe(
      `curl -sG http://prom:9090/api/v1/query --data-urlencode 'query=1000 * histogram_quantile(0.95, sum by (le, pod) (rate(db_pool_wait_time_seconds_bucket{job=~".*"}[5m])))'  # wait_p95_ms`,
    );
  });

  it('kubectl: a hostile --set value comes out quoted, grep and the flag follow', () => {
    const out = render(pg, 'app-logs-leaks', ['label_selector=app=api; rm -rf /']);
    expect(out.flag).toBe('--kubectl PATH / --kube-context NAME');
    expect(out.lines).toEqual([
      "kubectl logs -l 'app=api; rm -rf /' --tail=500 --all-containers=true --prefix=true | grep -iE " +
        `'pool\\b.*\\b(exhausted|full|limit|timed? ?out)|exhausted.*\\bpool|(could not|unable to|failed to|cannot|can'\\''t) (get|acquire|obtain|check ?out) (a )?(db |database )?connection|QueuePool|\\btime(d)?[ -]?out|leak|transaction|too many (connections|clients)|remaining connection slots'`,
    ]);
    // The by-hand grep is GNU grep's -E: it keeps the seeds' lines and leaves the others out.
    const pattern = argvOf(out.lines[0]!.split(' | ')[1]!).at(-1)!;
    const kept = execFileSync('grep', ['-iE', pattern], {
      input: [
        'INFO GET /health 200',
        'ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached',
        'WARN connection pool exhausted, waiting for a connection',
        'FATAL: remaining connection slots are reserved for non-replication superuser connections',
        "ERROR can't acquire a connection",
        'INFO user logged in',
      ].join('\n'),
    }).toString();
    expect(kept.trim().split('\n')).toHaveLength(4);
    expect(kept).not.toMatch(/health|logged in/);
    const [kubectlPart] = out.lines[0]!.split(' | ');
    expect(argvOf(kubectlPart!)).toEqual([
      'kubectl',
      'logs',
      '-l',
      'app=api; rm -rf /',
      '--tail=500',
      '--all-containers=true',
      '--prefix=true',
    ]);
  });

  it('kubectl: the known kubectl argv (binary, context, namespace) is used', () => {
    const out = render(pg, 'recent-changes', ['deployment=web api'], {
      kubectlArgv: (args: string[]) => ['/opt/kubectl', '--context', 'prod', ...args],
    });
    expect(out).toEqual({
      lines: ["/opt/kubectl --context prod rollout history 'deployment/web api'"],
    });
  });

  it('change on kubernetes: each command, then the wait, with the flag', () => {
    expect(render(pg, 'raise-pool-size', ['pool_size=40'])).toEqual({
      lines: [
        'kubectl set env deployment/api DATABASE_POOL_SIZE=40 DATABASE_POOL_MAX_OVERFLOW=10',
        'kubectl rollout status deployment/api',
      ],
      flag: '--kube-context NAME',
    });
    // --set container names the app container: the sidecars keep their environment.
    expect(render(pg, 'raise-pool-size', ['pool_size=40', 'container=api']).lines[0]).toBe(
      'kubectl set env deployment/api --containers=api DATABASE_POOL_SIZE=40 DATABASE_POOL_MAX_OVERFLOW=10',
    );
    expect(render(my, 'route-reads', ["read_service=it's"]).lines).toEqual([
      `kubectl patch service 'it'\\''s' -p '{"spec":{"selector":{"role":"replica"}}}'`,
      `kubectl get service 'it'\\''s' -o 'jsonpath={.spec.selector.role}'`,
    ]);
  });

  it('change on the database: the statement with the value written in, no flag', () => {
    expect(render(my, 'raise-max-connections', ['new_max_connections=500'])).toEqual({
      lines: ['SET GLOBAL max_connections = CAST(500 AS UNSIGNED)'],
    });
  });

  it('manual: its commands and the note, no flag', () => {
    expect(render(pg, 'restart-postgres', [])).toEqual({
      lines: [
        'kubectl rollout restart statefulset/postgres-primary',
        '# or: pg_ctl restart -D $PGDATA, systemctl restart postgresql; applications reconnect',
      ],
    });
  });

  it('an unset optional parameter stays visibly open, quoted so that pasting it fails', () => {
    const step: Step = {
      id: 'x',
      title: 'X',
      why: 'w',
      findings: [],
      kind: 'kubectl',
      args: ['get', 'pods', '--namespace', '{namespace}'],
    };
    const specs = { namespace: { type: 'string' as const, description: 'n' } };
    expect(byHandCommand(step, resolveParameters(specs), specs).lines).toEqual([
      "kubectl get pods --namespace '<NAMESPACE>'",
    ]);
  });
});

describe('targetOf', () => {
  it('names the target each step of the bundled runbooks needs', async () => {
    const rbs = await Promise.all(
      ['postgres', 'mysql'].map((e) => loadRunbookFile(`runbooks/${e}/pool-exhausted.yaml`)),
    );
    const [pgRb, myRb] = rbs as [Runbook, Runbook];
    const of = (rb: Runbook, id: string) =>
      targetOf([...rb.diagnose, ...rb.actions, ...rb.verify].find((s) => s.id === id)!);
    expect(
      ['utilization', 'kill-idle', 'app-pool', 'app-logs-leaks', 'restart-app'].map((id) =>
        of(pgRb, id),
      ),
    ).toEqual(['database', 'database', 'prometheus', 'kubernetes', 'kubernetes']);
    expect(of(pgRb, 'raise-max-connections')).toBe('database');
    expect(of(pgRb, 'restart-postgres')).toBeNull();
    expect(of(myRb, 'raise-max-connections')).toBe('database');
  });
});
