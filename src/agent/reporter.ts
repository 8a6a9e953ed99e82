/**
 * Fleet convergence reports: what this instance did with each config, sent
 * to cfgd (FleetService.ReportInstance) after each version applied or failed
 * and at every heartbeat. Reports never hold the agent up: each is sent in
 * the background, one at a time per config (a report asked for while one is
 * in flight follows it, with the state as it is then), and a failed one is
 * logged and left to the next heartbeat.
 */
import type { Logger } from 'pino';

/** The longest `error` a report carries (FleetService's limit). */
export const REPORT_ERROR_MAX = 1024;

/** What one instance reports on one config. */
export interface InstanceStatus {
  readonly appliedVersion: number;
  readonly failedVersion: number;
  readonly error: string;
}

/** The call the reporter makes: `CfgdClient.reportInstance`. */
export interface ReportClient {
  reportInstance(request: {
    userId: string;
    configName: string;
    instanceId: string;
    appliedVersion: number;
    failedVersion: number;
    error: string;
  }): Promise<unknown>;
}

/** Sends the reports of one instance on the configs of one user. */
export class Reporter {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private stopped = false;

  constructor(
    private readonly client: ReportClient,
    private readonly userId: string,
    private readonly instanceId: string,
    /** The status of a config now; undefined when there is nothing to report (no version applied or failed yet). */
    private readonly status: (configName: string) => InstanceStatus | undefined,
    private readonly log: Logger,
  ) {}

  /** Reports on `configName` soon: now, or after the report in flight. */
  report(configName: string): void {
    if (this.stopped) return;
    if (this.inFlight.has(configName)) {
      this.again.add(configName);
      return;
    }
    const sent = this.send(configName).finally(() => {
      this.inFlight.delete(configName);
      if (this.again.delete(configName)) this.report(configName);
    });
    this.inFlight.set(configName, sent);
  }

  /** Sends no further reports; those in flight end with the client. */
  stop(): void {
    this.stopped = true;
    this.again.clear();
  }

  private async send(configName: string): Promise<void> {
    const status = this.status(configName);
    if (status === undefined) return;
    try {
      await this.client.reportInstance({
        userId: this.userId,
        configName,
        instanceId: this.instanceId,
        appliedVersion: status.appliedVersion,
        failedVersion: status.failedVersion,
        error: status.failedVersion === 0 ? '' : reportError(status.error),
      });
      this.log.debug({ config: configName, ...status, error: undefined }, 'reported to cfgd');
    } catch (error: unknown) {
      if (this.stopped) return;
      this.log.warn(
        { config: configName, err: error },
        'the report to cfgd failed; it is sent again at the next heartbeat',
      );
    }
  }
}

/** `text` as a report's error: one line, whitespace runs as one space, at most `REPORT_ERROR_MAX` characters. */
export function reportError(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  if (line.length <= REPORT_ERROR_MAX) return line;
  let cut = line.slice(0, REPORT_ERROR_MAX - 1);
  // Never half a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}
