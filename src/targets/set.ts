import type { TargetKind } from '../runbook/types.js';
import type { KubernetesSpec, KubernetesTarget } from './kubernetes.js';
import type { PrometheusSpec, PrometheusTarget } from './prometheus.js';
import type { DatabaseTarget, DatabaseTargetSpec } from './types.js';

/** Where each system of the incident is, before anything is opened. The database is always there. */
export interface TargetSpecs {
  database: DatabaseTargetSpec;
  prometheus?: PrometheusSpec;
  kubernetes?: KubernetesSpec;
}

/** How each kind of target is opened; each loads its adapter only when a step needs it. */
export interface TargetOpeners {
  database(spec: DatabaseTargetSpec): Promise<DatabaseTarget>;
  prometheus(spec: PrometheusSpec): Promise<PrometheusTarget>;
  kubernetes(spec: KubernetesSpec): Promise<KubernetesTarget>;
}

/**
 * The named targets of one run, each opened on first use and then shared by every step. A
 * database that refuses the connection fails the steps that need it; a restart of the
 * application through kubectl still runs.
 */
export class Targets {
  private db?: Promise<DatabaseTarget>;
  private openedDb?: DatabaseTarget;
  private prom?: Promise<PrometheusTarget>;
  private kube?: Promise<KubernetesTarget>;

  constructor(
    readonly specs: TargetSpecs,
    private readonly open: TargetOpeners,
  ) {}

  has(kind: TargetKind): boolean {
    return kind === 'database' || this.specs[kind] !== undefined;
  }

  /** Connected once; a refusal is remembered, so later steps fail at once with the same error. */
  database(): Promise<DatabaseTarget> {
    this.db ??= this.open.database(this.specs.database).then((target) => {
      this.openedDb = target;
      return target;
    });
    return this.db;
  }

  /**
   * Forgets a refusal, so that the next `database()` tries again: verify --wait keeps knocking,
   * since a full server lets the on-call account in as soon as a slot frees.
   */
  forgetRefusal(): void {
    if (!this.openedDb) this.db = undefined;
  }

  /** The database target if a step has connected it, without connecting. */
  get connectedDatabase(): DatabaseTarget | undefined {
    return this.openedDb;
  }

  prometheus(): Promise<PrometheusTarget> {
    const spec = this.specs.prometheus;
    if (!spec) throw new Error('no Prometheus target: check has("prometheus") first');
    this.prom ??= this.open.prometheus(spec);
    return this.prom;
  }

  kubernetes(): Promise<KubernetesTarget> {
    const spec = this.specs.kubernetes;
    if (!spec) throw new Error('no Kubernetes target: check has("kubernetes") first');
    this.kube ??= this.open.kubernetes(spec);
    return this.kube;
  }

  /** Closes the database connection (once: a second close, or none opened, does nothing). */
  async close(): Promise<void> {
    const opened = this.openedDb;
    this.openedDb = undefined;
    this.db = undefined;
    await opened?.close();
  }
}
