/**
 * The composition root: the only module that knows every layer. `startCfgd`
 * wires settings → store → app → transports; running this file as a program
 * reads the configuration, starts cfgd and stops it on SIGTERM/SIGINT.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ConfigApp } from './app/config-app.js';
import { allowAll, type Authorizer } from './app/context.js';
import { SettingsError, loadSettings, usage, type CfgdSettings, type StoreSettings } from './settings/settings.js';
import { CfgdError } from './domain/index.js';
import { createLogger } from './log/logger.js';
import { EmbeddedStore } from './store/embedded/sqlite-store.js';
import { RethinkDbStore } from './store/rethinkdb/rethinkdb-store.js';
import type { ConfigStore } from './store/store.js';
import { grpcHandlers } from './transport/grpc/handlers.js';
import { configServiceMethods, statusServiceMethods } from './transport/methods.js';
import { startGrpcServer, type RunningGrpcServer } from './transport/grpc/server.js';
import { gatewayRoutes, loadRegistry } from './transport/rest/gateway.js';
import { legacyValuesRoutes } from './transport/rest/legacy-values.js';
import { startRestServer, type RunningRestServer } from './transport/rest/server.js';
import { RequestPipeline, type Interceptor } from './transport/pipeline.js';
import { ConfigServiceService } from '../generated/cfgd/v1/config_service.js';
import { StatusServiceService } from '../generated/cfgd/v1/status_service.js';
import { WatchHub } from './app/watch-hub.js';

export interface RunningCfgd {
  /** The bound gRPC port (useful when the configured port is 0). */
  readonly grpcPort: number;
  /** The bound REST port. */
  readonly httpPort: number;
  readonly store: ConfigStore;
  readonly app: ConfigApp;
  /** Ends watches with UNAVAILABLE, drains calls, then closes the store. */
  stop(): Promise<void>;
}

export async function createStore(settings: StoreSettings, log: Logger): Promise<ConfigStore> {
  switch (settings.kind) {
    case 'embedded':
      return new EmbeddedStore({ path: settings.path, sync: settings.sync });
    case 'rethinkdb':
      return RethinkDbStore.open(settings, log.child({ component: 'rethinkdb' }));
  }
}

/** Parts a caller (a test, an embedding program) may supply instead of those `startCfgd` builds. */
export interface CfgdOverrides {
  /** Used instead of the one `settings.store` names; the caller closes it. */
  readonly store?: ConfigStore;
  readonly authorizer?: Authorizer;
  readonly clock?: () => Date;
  /** Run in order around every call of both transports (see `RequestPipeline`). */
  readonly interceptors?: readonly Interceptor[];
}

export async function startCfgd(
  settings: CfgdSettings,
  log: Logger,
  overrides: CfgdOverrides = {},
): Promise<RunningCfgd> {
  const ownsStore = overrides.store === undefined;
  const store = overrides.store ?? (await createStore(settings.store, log));
  const watchHub = new WatchHub({
    store,
    maxQueuedEvents: settings.watchQueueEvents,
    heartbeatMs: settings.heartbeatMs,
    log: log.child({ component: 'watch' }),
  });
  const app = new ConfigApp({
    store,
    watchHub,
    authorizer: overrides.authorizer ?? allowAll,
    limits: settings.limits,
    clock: overrides.clock ?? (() => new Date()),
  });
  // Each service once, for both transports.
  const services = [
    { name: 'cfgd.v1.ConfigService', definition: ConfigServiceService, methods: { ...configServiceMethods(app) } },
    { name: 'cfgd.v1.StatusService', definition: StatusServiceService, methods: { ...statusServiceMethods(app) } },
  ];
  const pipeline = new RequestPipeline(overrides.interceptors ?? [], log.child({ component: 'pipeline' }));
  const shutdown = new AbortController();
  let grpc: RunningGrpcServer | undefined;
  let rest: RunningRestServer | undefined;
  try {
    grpc = await startGrpcServer({
      address: settings.grpcAddress,
      services: services.map(({ name, definition, methods }) => ({
        definition,
        handlers: grpcHandlers({ service: name, methods, pipeline, shutdown: shutdown.signal }),
      })),
      // Room for values at the configured limit in protobuf form, which can be larger than JSON.
      maxReceiveMessageBytes: Math.max(4 * 1024 * 1024, 4 * settings.limits.maxBytes),
      keepaliveMs: settings.grpcKeepaliveMs,
      keepaliveTimeoutMs: settings.grpcKeepaliveTimeoutMs,
    });
    const registry = loadRegistry();
    rest = await startRestServer({
      address: settings.httpAddress,
      routes: [
        ...legacyValuesRoutes(app),
        ...services.flatMap(({ name, definition, methods }) =>
          gatewayRoutes({ registry, service: name, methods, codecs: definition }),
        ),
      ],
      pipeline,
      maxBodyBytes: settings.maxBodyBytes,
      log: log.child({ component: 'rest' }),
      shutdown: shutdown.signal,
    });
  } catch (error: unknown) {
    await grpc?.shutdown(0);
    if (ownsStore) await store.close();
    throw error;
  }
  const running = { grpc, rest };
  log.info(
    {
      grpc: `${hostOf(settings.grpcAddress)}:${grpc.port}`,
      http: `${hostOf(settings.httpAddress)}:${rest.port}`,
      store: describeStore(settings.store),
    },
    'cfgd listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpc.port,
    httpPort: rest.port,
    store,
    app,
    stop: () =>
      (stopping ??= (async () => {
        shutdown.abort(new CfgdError('unavailable', 'SERVER_SHUTTING_DOWN', 'cfgd is shutting down; reconnect'));
        await Promise.all([
          running.grpc.shutdown(settings.shutdownGraceMs),
          running.rest.shutdown(settings.shutdownGraceMs),
        ]);
        if (ownsStore) await store.close();
        log.info('cfgd stopped');
      })()),
  };
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

function describeStore(store: StoreSettings): string {
  // Never log the password.
  if (store.kind === 'rethinkdb') return `rethinkdb://${store.host}:${store.port}/${store.db}`;
  return `embedded:${store.path} (sync=${store.sync})`;
}

async function run(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return;
  }
  let settings: CfgdSettings;
  try {
    settings = loadSettings(argv, process.env);
  } catch (error: unknown) {
    if (!(error instanceof SettingsError)) throw error;
    console.error(`cfgd: ${error.message}\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const log = createLogger(settings.logLevel);
  const cfgd = await startCfgd(settings, log);
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'shutting down');
    cfgd.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
}

if (isEntryPoint()) {
  run(process.argv.slice(2)).catch((error: unknown) => {
    console.error('cfgd: failed to start:', error);
    process.exit(1);
  });
}
