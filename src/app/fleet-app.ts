import type { Logger } from 'pino';
import {
  CfgdError,
  configKey,
  isConverged,
  resourceName,
  validateReport,
  type ConfigKey,
  type InstanceReport,
} from '../domain/index.js';
import type { ConfigStore } from '../store/store.js';
import type { Authorizer, RequestContext } from './context.js';

export interface FleetAppDeps {
  readonly store: ConfigStore;
  readonly authorizer: Authorizer;
  readonly clock: () => Date;
  /** How long an instance may stay silent before it is forgotten (`--instance-ttl-ms`). */
  readonly instanceTtlMs: number;
  /** The most live instances one config keeps reports of (`--max-instances`). */
  readonly maxInstances: number;
  readonly log: Logger;
}

export interface ReportInput {
  readonly userId: string;
  readonly configName: string;
  readonly instanceId: string;
  readonly appliedVersion: number;
  readonly failedVersion: number;
  readonly error: string;
}

export interface Convergence {
  /** The config's latest version; 0 when it has never been written. */
  readonly latestVersion: number;
  /** The live instances' reports, ordered by instance id. */
  readonly instances: InstanceReport[];
  /** How many of them run the latest version with no failure after it. */
  readonly converged: number;
}

/**
 * Fleet convergence: instances report what they applied (`report`), operators
 * ask which instance runs which version (`list`). Reports are bounded: one per
 * instance and config, at most `maxInstances` live ones per config, and those
 * of instances silent for `instanceTtlMs` are neither listed nor kept (a
 * sweep removes them, `start`).
 */
export class FleetApp {
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly deps: FleetAppDeps) {}

  /**
   * Stores an instance's report. Needs `watch` on the config (what an agent
   * following it holds), checked before anything is read. The versions are
   * checked against the config's latest (a version it never had is refused).
   */
  async report(ctx: RequestContext, input: ReportInput): Promise<InstanceReport> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'watch', resourceName(key));
    const { store, clock } = this.deps;
    const latest = await store.latest(key);
    const now = clock();
    const report = validateReport(input, latest?.version ?? 0, now, ctx.principal.id);
    const live = await this.live(key, now);
    if (live.length >= this.deps.maxInstances && !live.some((each) => each.instanceId === report.instanceId)) {
      throw new CfgdError(
        'resource-exhausted',
        'TOO_MANY_INSTANCES',
        `${resourceName(key)} has reports of ${live.length} instances, the most this server keeps (--max-instances); ` +
          'the report of a new one is refused until others go silent',
        { metadata: { max_instances: String(this.deps.maxInstances) } },
      );
    }
    await store.instances.putReport(key, report);
    return report;
  }

  /** The live instances of a config and its latest version. Needs `read` on the config. */
  async list(ctx: RequestContext, input: { userId: string; configName: string }): Promise<Convergence> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const [latest, instances] = await Promise.all([this.deps.store.latest(key), this.live(key, this.deps.clock())]);
    const latestVersion = latest?.version ?? 0;
    const converged = instances.filter((each) => isConverged(each, latestVersion)).length;
    return { latestVersion, instances, converged };
  }

  get instanceTtlMs(): number {
    return this.deps.instanceTtlMs;
  }

  /** Removes the reports of silent instances now, and then every `intervalMs` until `stop`. */
  start(intervalMs = Math.min(this.deps.instanceTtlMs, 60_000)): void {
    this.stop();
    const sweep = (): void => {
      const before = new Date(this.deps.clock().getTime() - this.deps.instanceTtlMs);
      this.deps.store.instances.expireReports(before).then(
        (removed) => {
          if (removed > 0) this.deps.log.debug({ removed }, 'forgot silent instances');
        },
        (error: unknown) => this.deps.log.warn({ err: error }, 'could not remove the reports of silent instances'),
      );
    };
    sweep();
    this.sweeper = setInterval(sweep, intervalMs);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private live(key: ConfigKey, now: Date): Promise<InstanceReport[]> {
    return this.deps.store.instances.reports(
      key,
      new Date(now.getTime() - this.deps.instanceTtlMs),
      this.deps.maxInstances,
    );
  }
}
