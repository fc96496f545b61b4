import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './run-cli.js';

/**
 * The prevent tests every engine runs (test/integration/prevent-*.test.ts): --check on a stock
 * server, the root causes after a drill, both timeout fixes applied and read back. Each engine
 * file passes what differs (its server, accounts, setting names and messages) and adds its own
 * tests around them.
 */

export interface PreventReport {
  status: string;
  findings: { id: string; severity: string; message: string }[];
  actions: {
    id: string;
    executed: boolean;
    declined: boolean;
    setting?: Record<string, unknown>;
  }[];
  root_causes: { id: string; evidence: string; fix: string; application?: string }[];
  root_causes_unchecked: { id: string; reason: string }[];
  capacity?: Record<string, unknown>;
}

export const findingIds = (r: PreventReport) => r.findings.map((f) => f.id);

/** The drill's thresholds: the held sessions are past them after a second or two. */
export const DRILL_SETS = ['--set', 'leak_idle_after=1s', '--set', 'idle_in_tx_after=1s'];

export interface PreventServer {
  /** The application's account on appdb: no SUPER, no pg_read_all_stats. */
  appUrl: string;
  stop(): Promise<void>;
}

export interface PreventEngine<S extends PreventServer> {
  /** As the describe names it: PostgreSQL, MariaDB. */
  name: string;
  start(): Promise<S>;
  urlFlag: '--pg' | '--mysql';
  /** The account that applies the fixes: it may change the settings of appdb or the server. */
  applyUrl(server: S): string;
  /** What --check finds on a stock server, at least. */
  stockFindings: string[];
  /** The message of missing-statement-timeout on a stock server. */
  statementMessage?: RegExp;
  /** Why the app account cannot check the N+1 root cause. */
  nPlusOneUnreadable: RegExp;
  /** More of --check on a stock server. */
  checkMore?(result: CliResult, report: PreventReport, ctx: PreventContext<S>): Promise<void>;
  /** The settings the two fixes change, with what a new session reads of each afterwards. */
  settings: { statement: string; idle: string };
  /** The value a new session (or connection) now gets of the setting, as the server shows it. */
  readSetting(server: S, name: string): Promise<string>;
  /** Each setting's value as `readSetting` shows it after the fix. */
  applied: { statement: string; idle: string };
  /** The drill: sessions held so that prevent finds a leak and long transactions. */
  drill: {
    /** Holds idle sessions of one application and open transactions of another. */
    hold(server: S): Promise<{ close(): Promise<void> }>;
    /** How long the held sessions sit before prevent runs (past the 1s thresholds). */
    waitMs: number;
    url(server: S): string;
    leakApp: string;
    txApp: string;
    /** More of the report after the drill. */
    more?(report: PreventReport, ctx: PreventContext<S>): Promise<void>;
  };
}

export interface PreventContext<S> {
  server(): S;
  /** `poolctl prevent --pg|--mysql URL ...args` through the built CLI. */
  prevent(url: string, ...args: string[]): Promise<CliResult>;
}

/**
 * The shared tests in order: --check on a stock server, `beforeApply` (tests that need the
 * settings untouched), the drill, both fixes applied, then `after`.
 */
export function describePrevent<S extends PreventServer>(
  engine: PreventEngine<S>,
  more: {
    beforeApply?: (ctx: PreventContext<S>) => void;
    after?: (ctx: PreventContext<S>) => void;
  } = {},
): void {
  describe(`prevent on ${engine.name}`, () => {
    let server: S;
    beforeAll(async () => {
      server = await engine.start();
    });
    afterAll(async () => server?.stop());

    const ctx: PreventContext<S> = {
      server: () => server,
      prevent: (url, ...args) => runCli(['prevent', engine.urlFlag, url, ...args]),
    };
    const { prevent } = ctx;

    it('--check exits 4 on a stock server: no statement or idle-in-transaction timeout', async () => {
      const result = await prevent(server.appUrl, '--check');
      expect(result.code).toBe(4);
      const report = JSON.parse(result.stdout) as PreventReport;
      expect(findingIds(report)).toEqual(expect.arrayContaining(engine.stockFindings));
      if (engine.statementMessage) {
        expect(report.findings.find((f) => f.id === 'missing-statement-timeout')?.message).toMatch(
          engine.statementMessage,
        );
      }
      // The N+1 check says it could not read (and what fixes it), not "no N+1".
      expect(report.root_causes_unchecked).toEqual([
        expect.objectContaining({
          id: 'n-plus-one',
          reason: expect.stringMatching(engine.nPlusOneUnreadable),
        }),
      ]);
      await engine.checkMore?.(result, report, ctx);
    });

    more.beforeApply?.(ctx);

    it("names the leak and the open transactions' application after a drill", async () => {
      const held = await engine.drill.hold(server);
      try {
        await new Promise((r) => setTimeout(r, engine.drill.waitMs));
        const result = await prevent(engine.drill.url(server), ...DRILL_SETS, '--output', 'json');
        const report = JSON.parse(result.stdout) as PreventReport;
        expect(report.root_causes).toContainEqual(
          expect.objectContaining({ id: 'connection-leak', application: engine.drill.leakApp }),
        );
        expect(report.root_causes).toContainEqual(
          expect.objectContaining({ id: 'long-transaction', application: engine.drill.txApp }),
        );
        await engine.drill.more?.(report, ctx);
      } finally {
        await held.close();
      }
    });

    it('--apply statement-timeout --apply idle-in-transaction-timeout --yes, then --check exits 0', async () => {
      const applied = await prevent(
        engine.applyUrl(server),
        '--apply',
        'statement-timeout',
        '--apply',
        'idle-in-transaction-timeout',
        '--yes',
        '--output',
        'json',
      );
      const report = JSON.parse(applied.stdout) as PreventReport;
      expect(report.actions.map((a) => [a.id, a.executed, a.setting])).toEqual([
        [
          'statement-timeout',
          true,
          { name: engine.settings.statement, current: '0', next: '30', after: '30' },
        ],
        [
          'idle-in-transaction-timeout',
          true,
          { name: engine.settings.idle, current: '0', next: '30', after: '30' },
        ],
      ]);
      expect(applied.code).toBe(0);
      // What a new session gets, as the server itself shows it.
      expect(await engine.readSetting(server, engine.settings.statement)).toBe(
        engine.applied.statement,
      );
      expect(await engine.readSetting(server, engine.settings.idle)).toBe(engine.applied.idle);
      const check = await prevent(server.appUrl, '--check');
      expect(check.code).toBe(0);
      expect(findingIds(JSON.parse(check.stdout) as PreventReport)).not.toContain(
        'missing-statement-timeout',
      );
    });

    more.after?.(ctx);
  });
}
