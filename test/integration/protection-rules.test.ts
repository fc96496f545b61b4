import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectVictims } from '../../src/safety/selection.js';
import { connectDatabase } from '../../src/targets/connect.js';
import type { DatabaseTarget, Protection } from '../../src/targets/types.js';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { holdMysqlSessions } from '../helpers/mysql-sessions.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { holdSessions } from '../helpers/sessions.js';

// One table of protection cases, run through the selection (what the operator confirms) and
// through each engine's re-check at kill time against a real server: the same sessions are
// spared, with the same words. The re-check is reached with the session shown as killable
// (superuser: false), as if the selection had let it through, so it must catch it on its own.

type Engine = 'postgres' | 'mariadb' | 'mariadb-stock';
type Holder = 'app' | 'superuser';

interface Case {
  name: string;
  /** Whose session: the ordinary application account's, or a superuser's. */
  holder: Holder;
  /** Its application (program) name. */
  application: string;
  protection: Protection;
  /** The reason both must give. */
  reason: RegExp | string;
  engines: Engine[];
}

const none: Protection = { users: [], applications: [], includeSuperusers: false };
const everywhere: Engine[] = ['postgres', 'mariadb'];

const cases: Case[] = [
  {
    name: '--protect-user in another case',
    holder: 'app',
    application: 'api',
    protection: { ...none, users: ['APP'] },
    reason: 'protected user "app" (--protect-user)',
    engines: everywhere,
  },
  {
    name: '--protect-app in another case',
    holder: 'app',
    application: 'api',
    protection: { ...none, applications: ['API'] },
    reason: 'protected application "api" (--protect-app)',
    engines: everywhere,
  },
  {
    name: 'a default monitoring exporter, in another case',
    holder: 'app',
    application: 'Postgres_Exporter',
    protection: { ...none, defaultApplications: ['postgres_exporter', 'mysqld_exporter'] },
    reason: 'monitoring "Postgres_Exporter" (protect_apps_default)',
    engines: everywhere,
  },
  {
    name: 'a superuser',
    holder: 'superuser',
    application: 'psql',
    protection: none,
    reason: /^superuser "(postgres|root)" \(--include-superusers to include\)$/,
    engines: everywhere,
  },
  {
    name: '--protect-app where application names cannot be read',
    holder: 'app',
    application: 'api',
    protection: { ...none, applications: ['api'] },
    reason:
      /^application unknown: performance_schema is OFF.*; --protect-app api cannot be checked$/,
    engines: ['mariadb-stock'],
  },
  {
    name: 'a superuser status that cannot be read',
    holder: 'superuser',
    application: 'mysql',
    protection: none,
    reason: /^superuser status unknown: .*--include-superusers to include\)$/,
    engines: ['mariadb-stock'],
  },
];

const KILL_ALL_SQL = {
  postgres: readFileSync('test/fixtures/runbooks/postgres-kill-all/kill-all.sql', 'utf8'),
  mysql: readFileSync('test/fixtures/runbooks/mysql-kill-all/kill-all.sql', 'utf8'),
};

interface Rig {
  target: DatabaseTarget;
  sql: string;
  /** Holds one idle session of `holder` with this application name until closed. */
  hold(holder: Holder, application: string): Promise<{ id: number; close(): Promise<void> }>;
  stop(): Promise<void>;
}

function spec(url: string, engine: 'postgres' | 'mysql') {
  const u = new URL(url);
  return {
    engine,
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
    connectTimeoutMs: 5000,
    statementTimeoutMs: 10000,
    from: 'test',
  } as const;
}

async function postgresRig(): Promise<Rig> {
  const server: PgServer = await startPostgres();
  const target = await connectDatabase(spec(server.superuserUrl, 'postgres'));
  return {
    target,
    sql: KILL_ALL_SQL.postgres,
    async hold(holder, application) {
      const url = holder === 'app' ? server.appUrl : server.superuserUrl;
      const held = await holdSessions(url, { idle: 1, appNames: [application] });
      return { id: held.pids[0]!, close: () => held.close() };
    },
    async stop() {
      await target.close();
      await server.stop();
    },
  };
}

/** MariaDB with performance_schema ON, root killing; or stock, the on-call account killing. */
async function mariadbRig(stock: boolean): Promise<Rig> {
  const server: MariaDBServer = await startMariaDB({ performanceSchema: !stock });
  const killer = stock ? await server.createAccount('oncall') : server.rootUrl;
  const target = await connectDatabase(spec(killer, 'mysql'));
  return {
    target,
    sql: KILL_ALL_SQL.mysql,
    async hold(holder, application) {
      const url = holder === 'app' ? server.appUrl : server.rootUrl;
      const held = await holdMysqlSessions(url, { sleep: 1, programNames: [application] });
      return { id: held.ids[0]!, close: () => held.close() };
    },
    async stop() {
      await target.close();
      await server.stop();
    },
  };
}

const rigs: Record<Engine, () => Promise<Rig>> = {
  postgres: postgresRig,
  mariadb: () => mariadbRig(false),
  'mariadb-stock': () => mariadbRig(true),
};

describe.each(Object.keys(rigs) as Engine[])('protection rules on %s', (engine) => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await rigs[engine]();
  });
  afterAll(async () => rig?.stop());

  const mine = cases.filter((c) => c.engines.includes(engine));
  it.each(mine.map((c) => [c.name, c] as const))(
    '%s: the selection and the re-check spare it, in the same words',
    async (_name, c) => {
      const held = await rig.hold(c.holder, c.application);
      try {
        const session = (await rig.target.candidates({ sql: rig.sql, params: [] })).find(
          (s) => s.pid === held.id,
        );
        expect(session).toBeDefined();
        const selection = selectVictims([session!], {
          ownSessionId: rig.target.info.ownSessionId,
          protection: c.protection,
        });
        expect(selection.victims).toEqual([]);
        const reason = selection.spared[0]!.reason;
        expect(reason).toMatch(c.reason);

        const result = await rig.target.signal({
          sql: rig.sql,
          params: [],
          mode: 'terminate',
          sessions: [{ ...session!, superuser: false }],
          protection: c.protection,
        });
        expect(result.signalled).toEqual([]);
        expect(result.spared).toEqual([{ pid: held.id, reason }]);
        const still = await rig.target.stillThere([session!], 'terminate');
        expect([...still]).toEqual([held.id]);
      } finally {
        await held.close();
      }
    },
  );
});
