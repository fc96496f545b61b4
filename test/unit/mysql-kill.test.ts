import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  candidatesSql,
  classify,
  idList,
  killBatchSql,
  killInBatches,
  killOneByOne,
  mayUsePerformanceSchemaProcesslist,
  readingProcesslistFrom,
  readingProgramNamesFrom,
  recheckParams,
  recheckSql,
  statementIdSql,
  superusersSql,
  stillPresent,
  stillThereSql,
  victimSql,
  type BatchOutcome,
} from '../../src/targets/mysql-kill.js';
import type { Session, SignalRequest } from '../../src/targets/types.js';
import { fakeSession } from '../helpers/session-fixture.js';

const session = fakeSession;

/** A server stand-in: runs a batch statement by statement, failing where `errors` says. */
function fakeServer(errors: Record<number, { errno: number; message: string }>) {
  const batches: string[] = [];
  const run = async (sql: string): Promise<BatchOutcome> => {
    batches.push(sql);
    const statements = sql.split(';');
    for (let i = 0; i < statements.length; i++) {
      const id = Number(/\d+$/.exec(statements[i]!)![0]);
      if (errors[id]) return { completed: i, error: errors[id] };
    }
    return { completed: statements.length };
  };
  return { run, batches };
}

describe('killOneByOne', () => {
  it('sends each KILL after the previous victim has ended; 1094 gone, 1095 failed', async () => {
    const server = fakeServer({
      2: { errno: 1094, message: 'Unknown thread id: 2' },
      3: { errno: 1095, message: 'You are not owner of thread 3' },
    });
    const log: string[] = [];
    const killedAt = new Map<number, number>();
    const run = async (sql: string) => {
      log.push(sql);
      const id = Number(/\d+$/.exec(sql)![0]);
      killedAt.set(id, log.length);
      return server.run(sql);
    };
    // Each victim's statement ends on the second look after its KILL.
    const looks = new Map<number, number>();
    const probe = async (id: number) => {
      log.push(`look ${id}`);
      const n = (looks.get(id) ?? 0) + 1;
      looks.set(id, n);
      return n < 2 ? { command: 'Query', info: 'SELECT SLEEP(3600)', query_id: 7 } : undefined;
    };
    const outcome = await killOneByOne(
      { run, probe, sleep: async () => {} },
      [{ pid: 1, queryId: 7 }, { pid: 2 }, { pid: 3 }, { pid: 4, queryId: 7 }],
      'terminate',
    );
    expect(log).toEqual([
      'KILL CONNECTION 1',
      'look 1',
      'look 1',
      'KILL CONNECTION 2',
      'KILL CONNECTION 3',
      'KILL CONNECTION 4',
      'look 4',
      'look 4',
    ]);
    expect(outcome.killed).toEqual([1, 4]);
    expect(outcome.gone).toEqual([2]);
    expect(outcome.failed).toEqual([
      { pid: 3, reason: expect.stringMatching(/^permission denied \(error 1095/) },
    ]);
  });

  it('a KILL QUERY that came too early is sent again; a new statement counts as ended', async () => {
    const server = fakeServer({});
    let clock = 0;
    // Victim 1 runs on as if never killed until its third KILL; victim 2 starts the next statement.
    const probe = async (id: number) => {
      const kills = server.batches.filter((b) => b === `KILL QUERY ${id}`).length;
      if (id === 2) return { command: 'Query', info: 'SELECT 1', query_id: 9 };
      return kills < 3 ? { command: 'Query', info: 'SELECT SLEEP(3600)', query_id: 7 } : undefined;
    };
    const outcome = await killOneByOne(
      { run: server.run, probe, sleep: async (ms) => void (clock += ms), now: () => clock },
      [
        { pid: 1, queryId: 7 },
        { pid: 2, queryId: 8 },
      ],
      'cancel',
    );
    expect(server.batches).toEqual([
      'KILL QUERY 1',
      'KILL QUERY 2',
      'KILL QUERY 1',
      'KILL QUERY 1',
    ]);
    expect(outcome).toEqual({ killed: [1, 2], gone: [], failed: [], spared: [] });
  });

  it('looks again right before a repeat KILL: a statement started since the last look is not hit', async () => {
    const server = fakeServer({});
    let clock = 0;
    // Victim 1 still runs statement 7 at its deadline (the KILL QUERY came too early), then,
    // while victim 2's KILL goes, finishes it and starts statement 8, never shown to anyone.
    const probe = async (id: number) => {
      if (id === 2) return undefined;
      const startedNext = server.batches.includes('KILL QUERY 2');
      return { command: 'Query', info: 'SELECT SLEEP(3600)', query_id: startedNext ? 8 : 7 };
    };
    const outcome = await killOneByOne(
      { run: server.run, probe, sleep: async (ms) => void (clock += ms), now: () => clock },
      [
        { pid: 1, queryId: 7 },
        { pid: 2, queryId: 9 },
      ],
      'cancel',
    );
    expect(server.batches).toEqual(['KILL QUERY 1', 'KILL QUERY 2']);
    expect(outcome).toEqual({ killed: [1, 2], gone: [], failed: [], spared: [] });
  });

  it('Ctrl-C after the first victim: no further KILL; the rest are spared, saying why', async () => {
    const server = fakeServer({});
    const abort = new AbortController();
    const probe = async () => {
      // The first victim's statement has ended; the operator presses Ctrl-C meanwhile.
      abort.abort();
      return undefined;
    };
    const outcome = await killOneByOne(
      { run: server.run, probe, sleep: async () => {}, signal: abort.signal },
      [
        { pid: 1, queryId: 7 },
        { pid: 2, queryId: 8 },
        { pid: 3, queryId: 9 },
      ],
      'terminate',
    );
    expect(server.batches).toEqual(['KILL CONNECTION 1']);
    expect(outcome).toEqual({
      killed: [1],
      gone: [],
      failed: [],
      spared: [
        { pid: 2, reason: 'interrupted before its KILL' },
        { pid: 3, reason: 'interrupted before its KILL' },
      ],
    });
  });
});

describe('killOneByOne without a statement id (MySQL 8 without performance_schema)', () => {
  it('repeats a KILL only where the statement id shows the same statement still running', async () => {
    const server = fakeServer({});
    let clock = 0;
    // Still running a statement after the wait, as a KILL that came too early would leave it, or
    // as a new statement just started would: without an id the two cannot be told apart.
    const probe = async (id: number) => {
      if (id === 3) {
        const kills = server.batches.filter((b) => b === 'KILL QUERY 3').length;
        return kills < 2 ? { command: 'Query', info: 'SELECT 3', query_id: 41 } : undefined;
      }
      return { command: 'Query', info: 'SELECT SLEEP(3600)', query_id: null };
    };
    const outcome = await killOneByOne(
      { run: server.run, probe, sleep: async (ms) => void (clock += ms), now: () => clock },
      // 1: no id at the kill; 2: an id at the kill, none in the probe; 3: the same id in both.
      [{ pid: 1 }, { pid: 2, queryId: 7 }, { pid: 3, queryId: 41 }],
      'cancel',
    );
    expect(server.batches).toEqual([
      'KILL QUERY 1',
      'KILL QUERY 2',
      'KILL QUERY 3',
      'KILL QUERY 3',
    ]);
    expect(outcome).toEqual({ killed: [1, 2, 3], gone: [], failed: [], spared: [] });
  });
});

describe('MySQL 8 statement identity (MySQL 8 cannot run here: these pin the SQL it is sent)', () => {
  const EVENT_ID = `(SELECT MAX(s.EVENT_ID)
     FROM performance_schema.threads t
     JOIN performance_schema.events_statements_current s ON s.THREAD_ID = t.THREAD_ID
     WHERE t.PROCESSLIST_ID = p.ID AND s.NESTING_EVENT_LEVEL = 0)`;

  it('reads the top-level statement event of the connection’s thread', () => {
    expect(statementIdSql('p', 'statement-events')).toBe(EVENT_ID);
    expect(statementIdSql('live', 'query-id')).toBe('live.QUERY_ID');
    expect(statementIdSql('live', 'none')).toBe('NULL');
  });

  it('the probe between KILLs, the poll after them and the re-check carry it', () => {
    expect(victimSql(12, 'statement-events')).toBe(
      `SELECT p.COMMAND AS command, p.INFO AS info, ${EVENT_ID} AS query_id
FROM information_schema.PROCESSLIST p WHERE p.ID = 12`,
    );
    expect(victimSql(12, 'none')).toBe(
      `SELECT p.COMMAND AS command, p.INFO AS info
FROM information_schema.PROCESSLIST p WHERE p.ID = 12`,
    );
    expect(stillThereSql([12, 13], 'statement-events')).toBe(
      `SELECT p.ID AS pid, CONCAT(p.USER, '@', p.HOST) AS session_token, p.COMMAND AS command,
  CAST(UNIX_TIMESTAMP() - p.TIME AS SIGNED) AS started, ${EVENT_ID} AS query_id
FROM information_schema.PROCESSLIST p WHERE p.ID IN (12, 13)`,
    );
    const recheck = recheckSql(
      'SELECT 1 AS pid',
      [12],
      { users: [], applications: [], includeSuperusers: false },
      { programNames: true, statementIds: 'statement-events' },
    );
    expect(recheck).toContain(`${EVENT_ID.replace(/\bp\.ID\b/, 'live.ID')} AS query_id`);
  });

  it('reads the process list from performance_schema.processlist on MySQL 8.0.22+', () => {
    expect(
      readingProcesslistFrom(victimSql(12, 'statement-events'), 'performance_schema.processlist'),
    ).toContain('FROM performance_schema.processlist p WHERE p.ID = 12');
  });
});

describe('where program names cannot be read, no statement depends on them', () => {
  const unreadable = { programNames: false, statementIds: 'query-id' } as const;
  const readable = { programNames: true, statementIds: 'query-id' } as const;
  const protection = {
    users: ['keeper'],
    applications: ['api'],
    defaultApplications: ['mysqld_exporter'],
    includeSuperusers: false,
  };
  const request: SignalRequest = {
    sql: 'SELECT 1 AS pid WHERE 1 >= ?',
    params: [300],
    mode: 'terminate',
    sessions: [session(7)],
    protection,
  };

  it('the candidate wrapper and the re-check read performance_schema only where readable', () => {
    expect(candidatesSql(request.sql, unreadable)).not.toContain('performance_schema');
    expect(candidatesSql(request.sql, readable)).toContain(
      'performance_schema.session_connect_attrs',
    );
    const recheck = recheckSql(request.sql, [7], protection, unreadable);
    expect(recheck).not.toContain('performance_schema');
    // --protect-app cannot be checked: everyone is spared for it; the courtesy list spares nobody.
    expect(recheck).toContain("WHEN TRUE THEN 'application-unknown'");
    expect(recheck).toContain("WHEN FALSE THEN 'monitoring'");
    expect(recheck.match(/\?/g)).toHaveLength(2);
    expect(recheckParams(request, unreadable)).toEqual(['keeper', 300]);
    expect(recheckParams(request, readable)).toEqual(['keeper', 'api', 'mysqld_exporter', 300]);
  });

  it('a superuser status the server does not show is unknown (NULL), and spared at the re-check', () => {
    const recheck = recheckSql(request.sql, [7], protection, unreadable);
    // Roles unknown: no account is known not to be a superuser from readable grants alone.
    expect(recheck).toMatch(/WHEN FALSE\s+OR NOT me\.kills_others\s+OR \(live\.USER = /);
    expect(recheck).toMatch(/OR TRUE AS kills_others/);
    expect(recheck).toMatch(/END IS NULL THEN 'superuser-unknown'/);
    const included = recheckSql(
      request.sql,
      [7],
      { ...protection, includeSuperusers: true },
      unreadable,
    );
    expect(included).toContain("WHEN FALSE THEN 'superuser-unknown'");
  });

  it('holders.sql reads the attributes as one row of unknown names per connection, comments intact', () => {
    const holders = readFileSync(
      new URL('../../runbooks/mysql/holders.sql', import.meta.url),
      'utf8',
    );
    const rewritten = readingProgramNamesFrom(holders, false);
    expect(rewritten).not.toMatch(/performance_schema\.session_connect_attrs/i);
    expect(rewritten).toContain(
      "(SELECT ID AS PROCESSLIST_ID, 'program_name' AS ATTR_NAME, CAST(NULL AS CHAR) AS ATTR_VALUE FROM information_schema.PROCESSLIST) AS session_connect_attrs",
    );
    expect(rewritten.split('\n')).toHaveLength(holders.split('\n').length);
    expect(readingProgramNamesFrom(holders, true)).toBe(holders);
  });
});

describe('killInBatches', () => {
  it('sends one batch when nothing fails', async () => {
    const server = fakeServer({});
    const outcome = await killInBatches(server.run, [1, 2, 3], 'terminate');
    expect(server.batches).toEqual(['KILL CONNECTION 1;KILL CONNECTION 2;KILL CONNECTION 3']);
    expect(outcome).toEqual({ killed: [1, 2, 3], gone: [], failed: [] });
  });

  it('goes on after the statement that stopped the batch: 1094 is gone, 1095 failed', async () => {
    const server = fakeServer({
      2: { errno: 1094, message: 'Unknown thread id: 2' },
      4: { errno: 1095, message: 'You are not owner of thread 4' },
    });
    const outcome = await killInBatches(server.run, [1, 2, 3, 4, 5], 'cancel');
    expect(server.batches).toEqual([
      'KILL QUERY 1;KILL QUERY 2;KILL QUERY 3;KILL QUERY 4;KILL QUERY 5',
      'KILL QUERY 3;KILL QUERY 4;KILL QUERY 5',
      'KILL QUERY 5',
    ]);
    expect(outcome.killed).toEqual([1, 3, 5]);
    expect(outcome.gone).toEqual([2]);
    expect(outcome.failed).toEqual([
      { pid: 4, reason: expect.stringMatching(/^permission denied \(error 1095: You are not/) },
    ]);
  });

  it('the last statement failing ends the loop', async () => {
    const server = fakeServer({ 3: { errno: 1094, message: 'Unknown thread id: 3' } });
    const outcome = await killInBatches(server.run, [1, 2, 3], 'terminate');
    expect(outcome).toEqual({ killed: [1, 2], gone: [3], failed: [] });
    expect(server.batches).toHaveLength(1);
  });

  it('throws when poolctl’s own connection is lost', async () => {
    const run = async (): Promise<BatchOutcome> => ({
      completed: 1,
      error: { fatal: true, code: 'PROTOCOL_CONNECTION_LOST', message: 'lost' },
    });
    await expect(killInBatches(run, [1, 2], 'terminate')).rejects.toMatchObject({ fatal: true });
  });

  it('splits more than 1,000 victims into batches of 1,000', async () => {
    const server = fakeServer({});
    const ids = Array.from({ length: 2500 }, (_, i) => i + 1);
    const outcome = await killInBatches(server.run, ids, 'terminate');
    expect(server.batches.map((b) => b.split(';').length)).toEqual([1000, 1000, 500]);
    expect(outcome.killed).toEqual(ids);
  });
});

describe('SQL text holds only integers poolctl wrote', () => {
  it.each([[1.5], [-1], [Number.NaN], [2 ** 60]])('%s is refused', (id) => {
    expect(() => idList([id])).toThrow('not a connection id');
    expect(() => killBatchSql([id], 'terminate')).toThrow('not a connection id');
  });

  it('binds protected names and the runbook parameters, in the order of their placeholders', () => {
    const request: SignalRequest = {
      sql: 'SELECT * FROM x WHERE TIME >= ?;',
      params: [300],
      mode: 'terminate',
      sessions: [session(7)],
      protection: {
        users: ["o'brien", 'keeper'],
        applications: ['migrations'],
        includeSuperusers: false,
      },
    };
    const readable = { programNames: true, statementIds: 'query-id' } as const;
    const sql = recheckSql(request.sql, [7], request.protection, readable);
    expect(sql).not.toContain("o'brien");
    expect(sql).toContain('LOWER(live.USER) IN (LOWER(?), LOWER(?))');
    expect(sql).toContain("LOWER(COALESCE(a.program_name, '')) IN (LOWER(?))");
    expect(sql).toContain('WHERE live.ID IN (7)');
    expect(sql.match(/\?/g)).toHaveLength(4);
    expect(recheckParams(request, readable)).toEqual(["o'brien", 'keeper', 'migrations', 300]);
  });
});

describe('classify', () => {
  const request = (
    sessions: Session[],
    mode: 'cancel' | 'terminate' = 'terminate',
  ): SignalRequest => ({
    sql: '',
    params: [],
    mode,
    sessions,
    protection: { users: [], applications: [], includeSuperusers: false },
  });
  const row = (pid: number, verdict: string, extra: Record<string, unknown> = {}) => ({
    pid,
    verdict,
    session_token: `app@10.0.0.1:${pid}`,
    user: 'app',
    command: 'Sleep',
    started: 1000,
    query_id: null,
    ...extra,
  });

  it('kills the survivors and says why the others were spared', () => {
    const shown = [1, 2, 3, 4, 5, 6, 7].map((pid) => session(pid));
    const { kill, result } = classify(request(shown), [
      row(1, 'kill'),
      row(2, 'kill', { session_token: 'app@10.0.0.1:9999' }),
      row(3, 'no-match', { command: 'Query' }),
      row(4, 'server', { user: 'event_scheduler', command: 'Daemon' }),
      row(5, 'superuser', { user: 'root' }),
      row(6, 'no-match'),
    ]);
    expect(kill.map((s) => s.pid)).toEqual([1]);
    expect(result.gone).toEqual([7]);
    expect(result.spared).toEqual([
      { pid: 2, reason: 'a new connection took over the id' },
      { pid: 3, reason: 'no longer matches: now Query' },
      { pid: 4, reason: "the server's own thread (event_scheduler, Daemon)" },
      { pid: 5, reason: 'superuser "root" (--include-superusers to include)' },
      { pid: 6, reason: 'no longer matches the selection' },
    ]);
  });

  it('a cancel kills only the statement that was shown, and remembers its QUERY_ID', () => {
    const shown = [1, 2, 3].map((pid) => session(pid, { state: 'Query', queryToken: '1000' }));
    const { kill, result, queryIds } = classify(request(shown, 'cancel'), [
      row(1, 'kill', { command: 'Query', started: 1001, query_id: 77 }),
      row(2, 'kill', { command: 'Query', started: 1300, query_id: 78 }),
      row(3, 'kill', { command: 'Sleep', started: 1300, query_id: 79 }),
    ]);
    expect(kill.map((s) => s.pid)).toEqual([1]);
    expect(queryIds).toEqual(new Map([[1, 77]]));
    expect(result.spared).toEqual([
      { pid: 2, reason: 'no longer matches: now running another statement' },
      { pid: 3, reason: 'no longer matches: now Sleep' },
    ]);
  });
});

describe('stillPresent', () => {
  const live = (pid: number, extra: Record<string, unknown> = {}) => ({
    pid,
    session_token: `app@10.0.0.1:${pid}`,
    command: 'Query',
    started: 1000,
    ...extra,
  });

  it('terminate: the same connection in any state, a reused id is not', () => {
    const sessions = [1, 2, 3].map((pid) => session(pid));
    const rows = [live(1, { command: 'Killed' }), live(2, { session_token: 'other@x:1' })];
    expect(stillPresent(sessions, rows, 'terminate', new Map())).toEqual(new Set([1]));
  });

  it('cancel with QUERY_ID: exact, even for a new statement started in the same second', () => {
    const sessions = [1, 2, 3].map((pid) => session(pid, { queryToken: '1000' }));
    const rows = [
      live(1, { query_id: 77 }),
      live(2, { query_id: 90 }), // the next statement
      live(3, { query_id: 79, command: 'Sleep' }), // ended; QUERY_ID stays on an idle connection
    ];
    const ids = new Map([
      [1, 77],
      [2, 78],
      [3, 79],
    ]);
    expect(stillPresent(sessions, rows, 'cancel', ids)).toEqual(new Set([1]));
  });

  it('cancel without QUERY_ID: a running statement that started within a second of the shown one', () => {
    const sessions = [1, 2, 3].map((pid) => session(pid, { queryToken: '1000' }));
    const rows = [
      live(1, { started: 1001 }),
      live(2, { started: 1005 }),
      live(3, { command: 'Sleep' }),
    ];
    expect(stillPresent(sessions, rows, 'cancel', new Map())).toEqual(new Set([1]));
  });
});

describe('where the process list is read', () => {
  it('only MySQL 8.0.22+ may read performance_schema.processlist (the adapter then probes it)', () => {
    expect(mayUsePerformanceSchemaProcesslist({ product: 'MariaDB', versionNum: 101119 })).toBe(
      false,
    );
    expect(mayUsePerformanceSchemaProcesslist({ product: 'MySQL', versionNum: 80021 })).toBe(false);
    expect(mayUsePerformanceSchemaProcesslist({ product: 'MySQL', versionNum: 80022 })).toBe(true);
    expect(mayUsePerformanceSchemaProcesslist({ product: 'MySQL', versionNum: 80400 })).toBe(true);
  });

  it('rewrites every spelling of the table, and nothing else', () => {
    const table = 'performance_schema.processlist';
    expect(
      readingProcesslistFrom(
        'SELECT * FROM information_schema.PROCESSLIST p JOIN `information_schema`.`processlist` q ' +
          'JOIN INFORMATION_SCHEMA . ProcessList r JOIN information_schema.PROCESSLIST_X x ' +
          'JOIN information_schema.INNODB_TRX t',
        table,
      ),
    ).toBe(
      `SELECT * FROM ${table} p JOIN ${table} q JOIN ${table} r ` +
        'JOIN information_schema.PROCESSLIST_X x JOIN information_schema.INNODB_TRX t',
    );
    const sql = 'SELECT ID FROM information_schema.PROCESSLIST';
    expect(readingProcesslistFrom(sql, 'information_schema.PROCESSLIST')).toBe(sql);
  });

  it('leaves no INFORMATION_SCHEMA.PROCESSLIST in the MySQL runbook on MySQL 8.0.22+', () => {
    const compiled = JSON.parse(
      readFileSync(new URL('../../dist/runbooks.json', import.meta.url), 'utf8'),
    ) as { runbooks: { id: string; diagnose: { sql?: string }[]; actions: { sql?: string }[] }[] };
    const runbook = compiled.runbooks.find((r) => r.id === 'mysql/pool-exhausted')!;
    const statements = [...runbook.diagnose, ...runbook.actions].flatMap((s) => s.sql ?? []);
    expect(statements.some((sql) => /information_schema\.processlist/i.test(sql))).toBe(true);
    for (const sql of statements) {
      expect(readingProcesslistFrom(sql, 'performance_schema.processlist')).not.toMatch(
        /information_schema`?\s*\.\s*`?processlist\b/i,
      );
    }
  });
});

describe('superusers through roles (issue 12 follow-up: SUPER / CONNECTION ADMIN from a role)', () => {
  const base = { programNames: false, statementIds: 'query-id' } as const;
  const protection = { users: [], applications: [], includeSuperusers: false };

  it('where role grants are unreadable, readable direct grants decide nothing but a superuser', () => {
    const sql = recheckSql('SELECT 1 AS pid', [7], protection, {
      ...base,
      roles: { own: 'listed', membership: 'unreadable' },
    });
    expect(sql).toMatch(/WHEN FALSE\s+OR NOT me\.kills_others/);
    // Our own account holding a role may KILL anyone: it does not count as "cannot kill others".
    expect(sql).toContain(
      'OR EXISTS (SELECT 1 FROM information_schema.APPLICABLE_ROLES) AS kills_others',
    );
    expect(sql).toMatch(/AND NOT me\.has_roles\) THEN 0/);
    expect(sql).not.toMatch(/roles_mapping|role_edges/);
  });

  it('MariaDB: the roles holding SUPER / CONNECTION ADMIN from mysql.global_priv, then their holders', () => {
    const sql = superusersSql({ own: 'listed', membership: 'roles_mapping' });
    expect(sql).toMatch(/^WITH RECURSIVE holders \(name\)/);
    expect(sql).toContain('& 4295000064 <> 0');
    expect(sql).toContain(
      'SELECT m.User FROM mysql.roles_mapping m JOIN holders h ON m.Role = h.name',
    );
    const recheck = recheckSql('SELECT 1 AS pid', [7], protection, {
      ...base,
      roles: { own: 'listed', membership: 'roles_mapping' },
    });
    expect(recheck).toMatch(/WHEN me\.reads_grants\s+OR NOT me\.kills_others/);
  });

  it('MySQL 8: roles are accounts in USER_PRIVILEGES; their holders from mysql.role_edges', () => {
    const sql = superusersSql({ own: 'listed', membership: 'role_edges' });
    expect(sql).toContain(
      'SELECT e.TO_USER FROM mysql.role_edges e JOIN holders h ON e.FROM_USER = h.name',
    );
    expect(sql).not.toContain('global_priv');
  });

  it('MySQL before 8.0 has no roles: readable grants decide, as before', () => {
    const sql = candidatesSql('SELECT 1 AS pid', {
      ...base,
      roles: { own: 'none', membership: 'unreadable' },
    });
    expect(sql).toMatch(/WHEN me\.reads_grants\s+OR NOT me\.kills_others/);
    expect(sql).toContain('FALSE AS has_roles');
  });
});
