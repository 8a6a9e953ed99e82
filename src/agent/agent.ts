/**
 * `cfgd agent`: follows one config (or every config of a user) with a watch
 * and keeps a file per config on disk for an app beside it, rendered in a
 * format or through a template; after each change it reloads the app (a
 * command or a signal). A version that cannot be rendered, written or
 * reloaded is a failure of that version: the previous file is put back, the
 * failure reported, and the agent goes on with the next version. A write or
 * reload that failed (a full disk, an app that was restarting) is tried
 * again after `--retry-ms`, then at doubling intervals, until it succeeds or
 * a later version of the config arrives; a rendering that failed is not (the
 * same values and template fail the same way).
 *
 * A state file records what each file holds, so that a restarted agent
 * serves those files as last-known-good at once, whether or not cfgd is
 * reachable, and resumes each watch after the version the file holds: no
 * change is missed and none is applied twice.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import {
  CfgdClientError,
  WatchEventType,
  type Config,
  type WatchOptions,
  type WatchResponse,
  type WatchTarget,
} from '../client/index.js';
import { sleep } from '../client/sleep.js';
import { readFileIfExists, removeFile, sha256, writeFileAtomic } from './files.js';
import { startHealthServer, type HealthAnswer, type HealthServer } from './health.js';
import { configFile, MAX_RETRY_MS, type AgentOptions } from './options.js';
import { reload } from './reloader.js';
import { Reporter, type InstanceStatus, type ReportClient } from './reporter.js';
import type { Renderer } from './renderer.js';
import { readState, writeState, type AgentState, type ConfigRecord } from './state.js';

/** What the agent needs of `CfgdClient`. */
export interface AgentClient extends ReportClient {
  watch(target: WatchTarget, options: WatchOptions): AsyncIterable<WatchResponse>;
  close(): void;
}

/** Everything the agent runs with. */
export interface AgentSettings {
  readonly options: AgentOptions;
  readonly renderer: Renderer;
  /** A client whose backoff paces the watch's reconnections (about 100 ms up to 2 s). */
  readonly client: AgentClient;
  readonly log: Logger;
  /** The agent's environment, handed on to the reload command. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How long the agent waits before it asks again for a watch cfgd refused. Default 5 s. */
  readonly refusedRetryMs?: number | undefined;
}

/** What the agent knows of one config and its file. */
interface Tracked {
  readonly name: string;
  readonly file: string;
  /** The last version handled (applied, or a deletion or schema-only version seen); 0: none. */
  version: number;
  /** True when the file holds a rendering the agent wrote and its app accepted. */
  good: boolean;
  /** The digest of that rendering and the fingerprint of the settings it was rendered with. */
  sha256: string;
  fingerprint: string;
  /** The version the watch resumes after; undefined: from the config's current state. */
  resume: number | undefined;
  /** The last version that failed, and why; 0 and '' since a later version applied. */
  failedVersion: number;
  error: string;
  deleted: boolean;
}

/** A version whose write or reload failed, waiting to be tried again. */
interface Retry {
  readonly version: number;
  readonly config: Config;
  readonly values: Record<string, unknown>;
  readonly delayMs: number;
  readonly timer: NodeJS.Timeout;
}

/** A running agent. */
export class Agent {
  private readonly tracked = new Map<string, Tracked>();
  /** By config name: the failed version to try again, until a later one arrives. */
  private readonly retries = new Map<string, Retry>();
  /** The end of the versions being handled: the watch's and the retries' go one at a time. */
  private handling: Promise<void> = Promise.resolve();
  private readonly controller = new AbortController();
  private readonly reporter: Reporter;
  private connected = false;
  /** Set while cfgd refuses the watch itself (credentials, grants, names): why. */
  private watchError = '';
  /** A user watch knows which configs it follows once it has a state or cfgd sent the initial state. */
  private knowsConfigs: boolean;
  private outageLogged = false;
  private health: HealthServer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private loop: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private stopped!: () => void;
  /** Resolves once the agent has stopped (see `stop`). */
  readonly done = new Promise<void>((resolve) => (this.stopped = resolve));

  private constructor(private readonly settings: AgentSettings) {
    const { options, client, log } = settings;
    this.knowsConfigs = options.configName !== undefined;
    this.reporter = new Reporter(client, options.userId, options.instanceId, (name) => this.status(name), log);
  }

  /**
   * Loads the state file, serves `/healthz`, and starts following cfgd.
   * Throws when the health address cannot be bound or a directory cannot be
   * made; an unreachable cfgd is no failure (the watch keeps trying).
   */
  static async start(settings: AgentSettings): Promise<Agent> {
    const agent = new Agent(settings);
    await agent.load();
    agent.health = await startHealthServer(settings.options.health.host, settings.options.health.port, () =>
      agent.answer(),
    );
    settings.log.info(
      {
        health: agent.health.address,
        user: settings.options.userId,
        config: settings.options.configName,
        instanceId: settings.options.instanceId,
      },
      'cfgd agent listening',
    );
    agent.loop = agent.run();
    agent.heartbeat = setInterval(() => agent.reportAll(), settings.options.reportIntervalMs);
    return agent;
  }

  /** `host:port` of `/healthz`. */
  get healthAddress(): string {
    return this.health?.address ?? '';
  }

  /**
   * Stops watching (a version being applied is finished first, its reload
   * included), stops reporting, closes `/healthz` and the client.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.controller.abort();
      clearInterval(this.heartbeat);
      for (const name of [...this.retries.keys()]) this.cancelRetry(name);
      await this.loop;
      await this.handling;
      this.reporter.stop();
      await this.health?.close();
      this.settings.client.close();
      this.settings.log.info('cfgd agent stopped');
      this.stopped();
    })();
    return this.stopping;
  }

  // -------------------------------------------------------------------------------------------
  // Start: what the state file says is on disk.

  private async load(): Promise<void> {
    const { options, log, renderer } = this.settings;
    await mkdir(options.dir ?? dirname(options.file!), { recursive: true });
    await mkdir(dirname(options.stateFile), { recursive: true });
    let state: AgentState | undefined;
    try {
      state = await readState(options.stateFile);
    } catch (error: unknown) {
      log.warn(
        { stateFile: options.stateFile, err: error },
        'the state file is unreadable; every config is rendered afresh',
      );
    }
    if (state !== undefined && state.userId !== options.userId) {
      log.warn({ stateFile: options.stateFile, user: state.userId }, 'the state file is of another user; not used');
      state = undefined;
    }
    for (const [name, record] of state?.configs ?? []) {
      if (options.configName !== undefined && name !== options.configName) continue;
      const tracked = this.track(name);
      if (record.file !== tracked.file) continue;
      await this.adopt(tracked, record);
      if (tracked.good && options.configName === undefined) this.knowsConfigs = true;
    }
    if (options.configName !== undefined) this.track(options.configName);
    for (const tracked of this.tracked.values()) {
      log.info(
        {
          config: tracked.name,
          file: tracked.file,
          version: tracked.version,
          good: tracked.good,
          resumeAfter: tracked.resume,
          rendering: tracked.good && tracked.fingerprint !== renderer.fingerprint ? 'changed' : undefined,
        },
        tracked.good ? 'serving the last-known-good file' : 'no last-known-good file',
      );
    }
  }

  /** Takes the state's record of a config if its file is still the one the agent wrote. */
  private async adopt(tracked: Tracked, record: ConfigRecord): Promise<void> {
    let bytes: Buffer | null;
    try {
      bytes = await readFileIfExists(tracked.file);
    } catch (error: unknown) {
      this.settings.log.warn({ config: tracked.name, file: tracked.file, err: error }, 'the file is unreadable');
      return;
    }
    if (bytes === null || sha256(bytes) !== record.sha256) {
      this.settings.log.warn(
        { config: tracked.name, file: tracked.file, version: record.version },
        bytes === null ? 'the file is gone; it is rendered afresh' : 'the file changed on disk; it is rendered afresh',
      );
      return;
    }
    tracked.version = record.version;
    tracked.good = true;
    tracked.sha256 = record.sha256;
    tracked.fingerprint = record.fingerprint;
    // Rendered with other settings (format, template, extension): the current version is rendered afresh.
    tracked.resume = record.fingerprint === this.settings.renderer.fingerprint ? record.version : undefined;
  }

  private track(name: string): Tracked {
    let tracked = this.tracked.get(name);
    if (tracked === undefined) {
      tracked = {
        name,
        file: configFile(this.settings.options, name),
        version: 0,
        good: false,
        sha256: '',
        fingerprint: '',
        resume: undefined,
        failedVersion: 0,
        error: '',
        deleted: false,
      };
      this.tracked.set(name, tracked);
    }
    return tracked;
  }

  // -------------------------------------------------------------------------------------------
  // The watch.

  private async run(): Promise<void> {
    const { options, client, log } = this.settings;
    const signal = this.controller.signal;
    while (!signal.aborted) {
      const watch = client.watch(
        { userId: options.userId, configName: options.configName },
        { ...this.resumePoint(), signal, onOpen: (address) => this.opened(address), onReconnect: (e) => this.lost(e) },
      );
      try {
        for await (const event of watch) await this.oneAtATime(() => this.handle(event));
      } catch (error: unknown) {
        // The client reconnects by itself after anything transient: this is cfgd refusing the watch.
        this.connected = false;
        // One line with the status and the reason (`PERMISSION_DENIED PERMISSION_DENIED: …`).
        this.watchError = error instanceof CfgdClientError ? error.describe() : messageOf(error);
        log.error({ err: error }, 'cfgd refused the watch; the files stay as they are, and it is asked again');
        await sleep(this.settings.refusedRetryMs ?? 5000, signal);
      }
    }
  }

  /** Where a new watch starts: after the version each file holds, or (rendered afresh) with the current state. */
  private resumePoint(): Pick<WatchOptions, 'startVersion' | 'knownVersions'> {
    const { configName } = this.settings.options;
    if (configName !== undefined) return { startVersion: this.tracked.get(configName)?.resume };
    // fromEntries defines each name as an own property, `__proto__` (a valid config name) included.
    const known = [...this.tracked.values()].flatMap((t) =>
      t.resume === undefined ? [] : [[t.name, t.resume] as const],
    );
    return { knownVersions: Object.fromEntries(known) };
  }

  private opened(address: string): void {
    this.connected = true;
    this.watchError = '';
    this.outageLogged = false;
    this.settings.log.info({ address }, 'watching cfgd');
    this.reportAll();
  }

  private lost(error: CfgdClientError): void {
    const wasConnected = this.connected;
    this.connected = false;
    // Once per outage at warn; the attempts that follow at debug.
    const level = wasConnected || !this.outageLogged ? 'warn' : 'debug';
    this.outageLogged = true;
    this.settings.log[level](
      { code: error.code, error: error.message },
      'cfgd is unreachable; the files stay as they are and the watch reconnects',
    );
  }

  private async handle(event: WatchResponse): Promise<void> {
    if (event.type === WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE) {
      this.knowsConfigs = true;
      this.settings.log.info({ configs: this.tracked.size }, 'initial state applied');
      return;
    }
    const config = event.config;
    if (config === undefined) return;
    const name = config.configName !== '' ? config.configName : this.settings.options.configName;
    if (name === undefined) return;
    // A later version of the config replaces one waiting to be tried again.
    this.cancelRetry(name);
    const had = this.tracked.get(name)?.version ?? 0;
    if (event.type === WatchEventType.WATCH_EVENT_TYPE_RESYNC && config.version < had) {
      // Versions only go up: cfgd's store was restored from an older backup, and its state is the one to follow.
      this.settings.log.warn(
        { config: name, version: config.version, fileVersion: had },
        'cfgd does not have the version the file holds (its store was restored?); following its current state',
      );
    }
    try {
      if (config.deleted || event.type === WatchEventType.WATCH_EVENT_TYPE_DELETED) await this.deleted(name, config);
      else if (config.values === undefined) this.withoutValues(name, config);
      else await this.apply(this.track(name), config, config.values);
    } catch (error: unknown) {
      this.settings.log.error(
        { config: name, version: config.version, err: error },
        'the version could not be handled',
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Versions.

  /**
   * Renders a version, writes it when its bytes differ from the file's, and
   * reloads the app after a write; any failure puts the file back as it was.
   */
  private async apply(tracked: Tracked, config: Config, values: Record<string, unknown>): Promise<void> {
    const { options, renderer, env } = this.settings;
    const version = config.version;
    if (tracked.file === options.stateFile) {
      return this.failed(tracked, version, `its file ${tracked.file} is the agent's state file; give --state-file`);
    }
    let rendered: Buffer;
    try {
      rendered = Buffer.from(
        renderer.render(values as Parameters<Renderer['render']>[0], {
          userId: options.userId,
          configName: tracked.name,
          version,
          updateTime: config.updateTime,
        }),
        'utf8',
      );
    } catch (error: unknown) {
      return this.failed(tracked, version, `render failed: ${messageOf(error)}`);
    }
    let before: Buffer | null;
    try {
      before = await readFileIfExists(tracked.file);
    } catch (error: unknown) {
      return this.failed(tracked, version, `the file cannot be read: ${messageOf(error)}`, { config, values });
    }
    if (before !== null && before.equals(rendered)) return this.applied(tracked, version, rendered, false);
    try {
      await writeFileAtomic(tracked.file, rendered);
    } catch (error: unknown) {
      await this.restore(tracked, before);
      return this.failed(tracked, version, `write failed: ${messageOf(error)}`, { config, values });
    }
    try {
      await reload(
        options.reload,
        { userId: options.userId, configName: tracked.name, version, file: tracked.file },
        env,
      );
    } catch (error: unknown) {
      await this.restore(tracked, before);
      return this.failed(tracked, version, messageOf(error), { config, values });
    }
    return this.applied(tracked, version, rendered, true);
  }

  private async applied(tracked: Tracked, version: number, rendered: Buffer, written: boolean): Promise<void> {
    this.cancelRetry(tracked.name);
    tracked.version = version;
    tracked.good = true;
    tracked.sha256 = sha256(rendered);
    tracked.fingerprint = this.settings.renderer.fingerprint;
    tracked.resume = version;
    tracked.failedVersion = 0;
    tracked.error = '';
    tracked.deleted = false;
    this.settings.log.info(
      { config: tracked.name, version, file: tracked.file, written, reloaded: written && this.reloads },
      written ? 'applied' : 'applied; the file already held it',
    );
    await this.saveState();
    this.reporter.report(tracked.name);
  }

  /**
   * Records a failed version and reports it. With `retry` (the version's
   * values), it is tried again later: after `--retry-ms`, then twice as long
   * after each failed attempt, up to MAX_RETRY_MS.
   */
  private failed(
    tracked: Tracked,
    version: number,
    why: string,
    retry?: { readonly config: Config; readonly values: Record<string, unknown> },
  ): void {
    tracked.failedVersion = version;
    tracked.error = why;
    // The watch has moved past it (a retry or a restarted agent tries it again; the state keeps the applied version).
    tracked.resume = version;
    const previous = this.retries.get(tracked.name);
    this.cancelRetry(tracked.name);
    let retryInMs: number | undefined;
    if (retry !== undefined && this.settings.options.retryMs > 0 && !this.controller.signal.aborted) {
      retryInMs =
        previous?.version === version
          ? Math.min(previous.delayMs * 2, MAX_RETRY_MS)
          : Math.min(this.settings.options.retryMs, MAX_RETRY_MS);
      const entry: Retry = {
        version,
        ...retry,
        delayMs: retryInMs,
        timer: setTimeout(() => void this.oneAtATime(() => this.retryNow(tracked, entry)), retryInMs),
      };
      this.retries.set(tracked.name, entry);
    }
    this.settings.log.error(
      { config: tracked.name, version, file: tracked.file, error: why, retryInMs },
      'the version failed; the file holds the previous one',
    );
    this.reporter.report(tracked.name);
  }

  /** Tries a failed version again, unless a later version or a stop came first. */
  private async retryNow(tracked: Tracked, entry: Retry): Promise<void> {
    if (this.retries.get(tracked.name) !== entry || this.controller.signal.aborted) return;
    this.settings.log.info({ config: tracked.name, version: entry.version }, 'trying the failed version again');
    try {
      await this.apply(tracked, entry.config, entry.values);
    } catch (error: unknown) {
      this.settings.log.error(
        { config: tracked.name, version: entry.version, err: error },
        'the version could not be handled',
      );
    }
  }

  private cancelRetry(name: string): void {
    const entry = this.retries.get(name);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.retries.delete(name);
  }

  /** Runs `task` after the versions being handled: files and reloads change one version at a time. */
  private oneAtATime(task: () => Promise<void>): Promise<void> {
    const run = this.handling.then(task);
    this.handling = run.catch(() => undefined);
    return run;
  }

  /** Puts the file back as it was before a failed version: its bytes, or no file. */
  private async restore(tracked: Tracked, before: Buffer | null): Promise<void> {
    try {
      if (before === null) await removeFile(tracked.file);
      else await writeFileAtomic(tracked.file, before);
    } catch (error: unknown) {
      tracked.good = false;
      this.settings.log.error(
        { config: tracked.name, file: tracked.file, err: error },
        'the previous file could not be put back; the file is in an unknown state',
      );
    }
  }

  /** A deletion: the file stays (the app keeps running on it); the version is handled. */
  private async deleted(name: string, config: Config): Promise<void> {
    const tracked = this.settings.options.configName === undefined ? this.tracked.get(name) : this.track(name);
    if (tracked === undefined) return;
    tracked.version = config.version;
    tracked.resume = config.version;
    tracked.deleted = true;
    tracked.failedVersion = 0;
    tracked.error = '';
    this.settings.log.warn(
      { config: name, version: config.version, file: tracked.file },
      'the config was deleted in cfgd; its file stays as it is',
    );
    await this.saveState();
    this.reporter.report(name);
  }

  /** A version without values (a schema set before any values): nothing to write. */
  private withoutValues(name: string, config: Config): void {
    const tracked = this.settings.options.configName === undefined ? this.tracked.get(name) : this.track(name);
    if (tracked === undefined) return;
    tracked.version = config.version;
    tracked.resume = config.version;
    this.reporter.report(name);
  }

  private get reloads(): boolean {
    return this.settings.options.reload.kind !== 'none';
  }

  // -------------------------------------------------------------------------------------------
  // State, reports and health.

  private async saveState(): Promise<void> {
    const configs = new Map<string, ConfigRecord>();
    for (const t of this.tracked.values()) {
      if (t.good)
        configs.set(t.name, { version: t.version, file: t.file, sha256: t.sha256, fingerprint: t.fingerprint });
    }
    try {
      await writeState(this.settings.options.stateFile, { userId: this.settings.options.userId, configs });
    } catch (error: unknown) {
      this.settings.log.error(
        { stateFile: this.settings.options.stateFile, err: error },
        'the state file could not be written; a restart renders afresh what it misses',
      );
    }
  }

  private status(name: string): InstanceStatus | undefined {
    const tracked = this.tracked.get(name);
    if (tracked === undefined || (tracked.version === 0 && tracked.failedVersion === 0)) return undefined;
    return { appliedVersion: tracked.version, failedVersion: tracked.failedVersion, error: tracked.error };
  }

  private reportAll(): void {
    for (const name of this.tracked.keys()) this.reporter.report(name);
  }

  /**
   * `/healthz`: ready when every config followed has a good file on disk
   * (connected or not); a user watch also needs to know its configs (from the
   * state file or cfgd's initial state).
   */
  private async answer(): Promise<HealthAnswer> {
    let ready = this.knowsConfigs;
    const configs: [string, unknown][] = [];
    for (const tracked of [...this.tracked.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const onDisk = tracked.good && (await exists(tracked.file));
      if (!onDisk) ready = false;
      configs.push([
        tracked.name,
        {
          version: tracked.version,
          file: tracked.file,
          failedVersion: tracked.failedVersion,
          error: tracked.error,
          ...(tracked.deleted ? { deleted: true } : {}),
        },
      ]);
    }
    return {
      ready,
      body: {
        connected: this.connected,
        instanceId: this.settings.options.instanceId,
        configs: Object.fromEntries(configs),
        ...(this.watchError === '' ? {} : { error: this.watchError }),
      },
    };
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
