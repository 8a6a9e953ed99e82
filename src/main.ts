/**
 * The composition root: the only module that knows every layer. `startCfgd`
 * wires config → store → app → transports; running this file as a program
 * reads the configuration, starts cfgd and stops it on SIGTERM/SIGINT.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ConfigApp } from './app/config-app.js';
import { allowAll } from './app/context.js';
import { ConfigError, loadConfig, usage, type CfgdConfig, type StoreConfig } from './config/config.js';
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

export async function createStore(config: StoreConfig, log: Logger): Promise<ConfigStore> {
  switch (config.kind) {
    case 'embedded':
      return new EmbeddedStore({ path: config.path, sync: config.sync });
    case 'rethinkdb':
      return RethinkDbStore.open(config, log.child({ component: 'rethinkdb' }));
  }
}

export async function startCfgd(config: CfgdConfig, log: Logger): Promise<RunningCfgd> {
  const store = await createStore(config.store, log);
  const watchHub = new WatchHub({ store, maxQueuedEvents: config.watchQueueEvents, heartbeatMs: config.heartbeatMs });
  const app = new ConfigApp({ store, watchHub, authorizer: allowAll, limits: config.limits, clock: () => new Date() });
  const methods = configServiceMethods(app);
  const statusMethods = statusServiceMethods(app);
  const shutdown = new AbortController();
  const transportLog = (component: string) => log.child({ component });
  let grpc: RunningGrpcServer | undefined;
  let rest: RunningRestServer | undefined;
  try {
    const grpcLog = transportLog('grpc');
    grpc = await startGrpcServer({
      address: config.grpcAddress,
      services: [
        {
          definition: ConfigServiceService,
          handlers: grpcHandlers({ methods: { ...methods }, log: grpcLog, shutdown: shutdown.signal }),
        },
        {
          definition: StatusServiceService,
          handlers: grpcHandlers({ methods: { ...statusMethods }, log: grpcLog, shutdown: shutdown.signal }),
        },
      ],
      // Room for values at the configured limit in protobuf form, which can be larger than JSON.
      maxReceiveMessageBytes: Math.max(4 * 1024 * 1024, 4 * config.limits.maxBytes),
      keepaliveMs: config.grpcKeepaliveMs,
      keepaliveTimeoutMs: config.grpcKeepaliveTimeoutMs,
    });
    const restLog = transportLog('rest');
    const registry = loadRegistry();
    const onUnexpected = (error: unknown): void => restLog.error({ err: error }, 'unexpected error in a request');
    rest = await startRestServer({
      address: config.httpAddress,
      routes: [
        ...legacyValuesRoutes(app),
        ...gatewayRoutes({
          registry,
          service: 'cfgd.v1.ConfigService',
          methods: { ...methods },
          codecs: ConfigServiceService,
          onUnexpected,
        }),
        ...gatewayRoutes({
          registry,
          service: 'cfgd.v1.StatusService',
          methods: { ...statusMethods },
          codecs: StatusServiceService,
          onUnexpected,
        }),
      ],
      maxBodyBytes: config.maxBodyBytes,
      log: restLog,
      shutdown: shutdown.signal,
    });
  } catch (error: unknown) {
    await grpc?.shutdown(0);
    await store.close();
    throw error;
  }
  const running = { grpc, rest };
  log.info(
    {
      grpc: `${hostOf(config.grpcAddress)}:${grpc.port}`,
      http: `${hostOf(config.httpAddress)}:${rest.port}`,
      store: describeStore(config.store),
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
          running.grpc.shutdown(config.shutdownGraceMs),
          running.rest.shutdown(config.shutdownGraceMs),
        ]);
        await store.close();
        log.info('cfgd stopped');
      })()),
  };
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

function describeStore(store: StoreConfig): string {
  // Never log the password.
  if (store.kind === 'rethinkdb') return `rethinkdb://${store.host}:${store.port}/${store.db}`;
  return `embedded:${store.path} (sync=${store.sync})`;
}

async function run(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return;
  }
  let config: CfgdConfig;
  try {
    config = loadConfig(argv, process.env);
  } catch (error: unknown) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`cfgd: ${error.message}\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const log = createLogger(config.logLevel);
  const cfgd = await startCfgd(config, log);
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
