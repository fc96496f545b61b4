/**
 * The database engines poolctl speaks to, each described once. Everything else that must know
 * an engine asks this registry: the runbook schema's `engine:` values and the `Engine` type, the
 * target flags (`--pg`, `--mysql`), which URL schemes and environment variables select an engine,
 * the runbook a target gets without `--runbook`, the SQL placeholder style the loader checks, and
 * the adapter and drill modules. Adding an engine is one entry here, an adapter (its target
 * module and its spec module under src/targets/) and its runbooks under runbooks/<id>/.
 *
 * `poolctl --help` loads this module to declare the flags: it must stay free of drivers and of
 * the adapters themselves, which load only when a run connects (a PostgreSQL run never loads
 * mysql2). Every module below is a dynamic import for that reason.
 */
import type { DrillEngine } from './drill/types.js';
import type { DatabaseTarget, DatabaseTargetSpec } from './targets/types.js';

/** Connect and statement timeouts, as every spec carries them. */
export interface SpecTimeouts {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/** An engine's way from a URL or its client's environment to a spec (before connecting). */
export interface EngineSpecModule {
  /** `url` has one of the engine's schemes; `from` names where it came from, for errors. */
  fromUrl(
    url: string,
    from: string,
    env: NodeJS.ProcessEnv,
    timeouts: SpecTimeouts,
  ): DatabaseTargetSpec | Promise<DatabaseTargetSpec>;
  /** Called when one of the engine's `env` variables is set and no URL was given. */
  fromEnv(env: NodeJS.ProcessEnv, timeouts: SpecTimeouts): DatabaseTargetSpec;
}

export interface EngineDescription {
  /** The runbook's `engine:`, the first part of its ids and the scheme of target labels. */
  readonly id: string;
  /** The servers it speaks to, as screens name them (an adapter's ServerInfo.product). */
  readonly products: readonly string[];
  /** The target flag without its dashes: `pg` is `--pg URL`. */
  readonly flag: string;
  /** URL schemes (lower case, with the colon) that mean this engine, first the canonical one. */
  readonly schemes: readonly string[];
  /** An example URL for messages that say what to pass. */
  readonly exampleUrl: string;
  /**
   * The engine's client variables, in the order messages name them: when no URL is given, any of
   * them set selects this engine (libpq's PGHOST…, the mysql client's MYSQL_HOST…).
   */
  readonly env: readonly string[];
  /** What `--<flag>`'s help says, besides the flag. */
  readonly flagHelp: string;
  /** The bundled runbook a target of this engine follows without `--runbook`. */
  readonly defaultRunbook: string;
  /**
   * How its SQL writes positional parameters: `$1, $2` (numbered, PostgreSQL's comments and
   * quotes) or `?, ?` (in order, MySQL's `#` comments, backslash escapes and backticks).
   */
  readonly placeholders: 'numbered' | 'question-mark';
  /** Loads the spec module (URL and environment parsing). */
  readonly spec: () => Promise<EngineSpecModule>;
  /** Loads the adapter and opens poolctl's one connection. */
  readonly connect: (spec: DatabaseTargetSpec) => Promise<DatabaseTarget>;
  /** Loads the drill module (`poolctl drill`); absent: the engine has no drill. */
  readonly drill?: (spec: DatabaseTargetSpec) => Promise<DrillEngine>;
}

export const ENGINES = {
  postgres: {
    id: 'postgres',
    products: ['PostgreSQL'],
    flag: 'pg',
    schemes: ['postgres:', 'postgresql:'],
    exampleUrl: 'postgres://user@host:5432/db',
    env: ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGSERVICE'],
    flagHelp: 'PostgreSQL target (else DATABASE_URL, PGHOST…, ~/.pgpass)',
    defaultRunbook: 'postgres/pool-exhausted',
    placeholders: 'numbered',
    spec: () => import('./targets/postgres-spec.js'),
    connect: async (spec) => (await import('./targets/postgres.js')).connectPostgres(spec),
    drill: async (spec) => (await import('./drill/postgres.js')).postgresDrill(spec),
  },
  mysql: {
    id: 'mysql',
    products: ['MySQL', 'MariaDB'],
    flag: 'mysql',
    schemes: ['mysql:', 'mariadb:'],
    exampleUrl: 'mysql://user@host:3306/',
    env: ['MYSQL_HOST', 'MYSQL_TCP_PORT', 'MYSQL_PWD', 'MYSQL_UNIX_PORT'],
    flagHelp: 'MySQL/MariaDB target (else DATABASE_URL, MYSQL_HOST, MYSQL_PWD…)',
    defaultRunbook: 'mysql/pool-exhausted',
    placeholders: 'question-mark',
    spec: () => import('./targets/mysql-spec.js'),
    connect: async (spec) => (await import('./targets/mysql.js')).connectMysql(spec),
    drill: async (spec) => (await import('./drill/mysql.js')).mysqlDrill(spec),
  },
} as const satisfies Record<string, EngineDescription>;

/** An engine's id: `postgres`, `mysql`. */
export type Engine = keyof typeof ENGINES;

/** A target flag's name as commander hands it over: `pg`, `mysql`. */
export type EngineFlag = (typeof ENGINES)[Engine]['flag'];

/** One URL per engine flag, as given on the command line. */
export type EngineUrlFlags = Partial<Record<EngineFlag, string>>;

/** Every engine, in the registry's order (which is the order flags and messages list them). */
export const ENGINE_LIST: readonly EngineDescription[] = Object.values(ENGINES);

/** The engine ids as a non-empty tuple, for the runbook schema's enum. */
export const ENGINE_IDS = Object.keys(ENGINES) as [Engine, ...Engine[]];

export function engineOf(id: Engine): EngineDescription {
  return ENGINES[id];
}

/** The engine whose scheme starts the URL (in lower case, as libpq requires it), else undefined. */
export function engineForUrl(url: string): EngineDescription | undefined {
  return ENGINE_LIST.find((e) => e.schemes.some((s) => url.startsWith(s)));
}

/** The URL given with the engine's flag (`--pg URL`), if any. */
export function urlFlag(flags: EngineUrlFlags, engine: EngineDescription): string | undefined {
  return (flags as Record<string, string | undefined>)[engine.flag] || undefined;
}

/** Just the engine flags of a command's flags, e.g. `{ pg: 'postgres://…' }`. */
export function engineUrlFlags(flags: EngineUrlFlags): EngineUrlFlags {
  const urls: Record<string, string> = {};
  for (const engine of ENGINE_LIST) {
    const url = urlFlag(flags, engine);
    if (url !== undefined) urls[engine.flag] = url;
  }
  return urls;
}

/** The engine flag the operator gave and its URL (`--pg`, `postgres://…`), for repeated commands. */
export function givenEngineFlag(flags: EngineUrlFlags): { flag: string; url: string } | undefined {
  for (const engine of ENGINE_LIST) {
    const url = urlFlag(flags, engine);
    if (url !== undefined) return { flag: `--${engine.flag}`, url };
  }
  return undefined;
}

/** `postgres://, postgresql://, mysql:// or mariadb://`: the schemes of `engines`, for messages. */
export function schemeList(engines: readonly EngineDescription[] = ENGINE_LIST): string {
  const all = engines.flatMap((e) => e.schemes.map((s) => `${s}//`));
  return all.length > 1 ? `${all.slice(0, -1).join(', ')} or ${all.at(-1)}` : all.join('');
}
