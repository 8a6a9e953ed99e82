/**
 * The composition root: the only module that knows every layer. `startCfgd`
 * wires settings → store → app → transports; running this file as a program
 * reads the configuration, starts cfgd and stops it on SIGTERM/SIGINT.
 */
import cluster from 'node:cluster';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ConfigApp } from './app/config-app.js';
import { allowAll, type Authorizer } from './app/context.js';
import { AuthApp } from './app/auth/auth-app.js';
import { Authenticator } from './app/auth/authenticator.js';
import { GrantAuthorizer } from './app/auth/access.js';
import { ensureAdminToken } from './app/auth/bootstrap.js';
import { JwtVerifier } from './app/auth/jwt.js';
import { CredentialRegistry } from './app/auth/registry.js';
import { SettingsError, loadSettings, usage, type CfgdSettings, type StoreSettings } from './settings/settings.js';
import { CfgdError } from './domain/index.js';
import { createLogger } from './log/logger.js';
import { EmbeddedStore } from './store/embedded/sqlite-store.js';
import { RethinkDbStore } from './store/rethinkdb/rethinkdb-store.js';
import type { ConfigStore, StoreEvents } from './store/store.js';
import { grpcHandlers } from './transport/grpc/handlers.js';
import { configServiceMethods, statusServiceMethods } from './transport/methods.js';
import { fleetServiceMethods } from './transport/fleet-methods.js';
import { FleetApp } from './app/fleet-app.js';
import { schemaMethods } from './transport/schema-methods.js';
import { lifecycleMethods } from './transport/lifecycle-methods.js';
import { renderMethods } from './transport/render-methods.js';
import { LifecycleApp } from './app/lifecycle-app.js';
import { Pruner } from './app/retention.js';
import { SchemaApp } from './app/schemas/schema-app.js';
import { SchemaChecks } from './app/schemas/schema-checks.js';
import { SchemaCompiler } from './schema/json-schema.js';
import { startGrpcServer, type RunningGrpcServer } from './transport/grpc/server.js';
import { gatewayRoutes, loadRegistry } from './transport/rest/gateway.js';
import { legacyValuesRoutes } from './transport/rest/legacy-values.js';
import { startRestServer, type RunningRestServer } from './transport/rest/server.js';
import { RequestPipeline, type Authenticate, type Interceptor } from './transport/pipeline.js';
import { authentication } from './transport/authentication.js';
import { authServiceMethods } from './transport/auth-methods.js';
import type { TlsMaterial } from './transport/tls.js';
import { AuthServiceService } from '../generated/cfgd/v1/auth_service.js';
import { ConfigServiceService } from '../generated/cfgd/v1/config_service.js';
import { StatusServiceService } from '../generated/cfgd/v1/status_service.js';
import { FleetServiceService } from '../generated/cfgd/v1/fleet_service.js';
import { WatchHub } from './app/watch-hub.js';
import { startPrimary } from './cluster/primary.js';
import { runWorker, type WorkerPeers } from './cluster/worker.js';
import { HealthMonitor } from './app/health.js';
import { aggregateScrape, CfgdMetrics } from './metrics/metrics.js';
import { accessLog } from './transport/access-log.js';
import { combineObservers } from './transport/observer.js';
import { GrpcHealth } from './transport/grpc/health.js';
import { reflectionService, REFLECTION_RPCS } from './transport/grpc/reflection.js';
import { metricsRoute, openApiRoute, probeRoutes, type MetricsScrape } from './transport/rest/operational-routes.js';
import { consoleRoutes, loadConsoleFiles } from './transport/rest/console-routes.js';
import { openApiDocument } from './transport/rest/openapi.js';
import { WORKER_ENV } from './cluster/messages.js';

export interface RunningCfgd {
  /** The bound gRPC port (useful when the configured port is 0). */
  readonly grpcPort: number;
  /** The bound REST port. */
  readonly httpPort: number;
  readonly store: ConfigStore;
  readonly app: ConfigApp;
  /** Every RPC this node serves, by full name (`cfgd.v1.ConfigService/Put`). */
  readonly rpcs: readonly string[];
  /** Every REST route this node serves: its HTTP method, path template and the operation it runs. */
  readonly routes: readonly {
    readonly method: string;
    readonly path: string;
    readonly operation: string;
    readonly streaming: boolean;
  }[];
  /** This node's copy of tokens and bindings; undefined with authentication off. */
  readonly registry: CredentialRegistry | undefined;
  /** This node's metrics; undefined with `--metrics off`. */
  readonly metrics: CfgdMetrics | undefined;
  /** Whether this node serves (the health service and `/readyz` follow it). */
  readonly health: HealthMonitor;
  /** Ends watches with UNAVAILABLE, drains calls, then closes the store. */
  stop(): Promise<void>;
}

export async function createStore(settings: StoreSettings, log: Logger, events?: StoreEvents): Promise<ConfigStore> {
  switch (settings.kind) {
    case 'embedded':
      return new EmbeddedStore({ path: settings.path, sync: settings.sync, events });
    case 'rethinkdb':
      return RethinkDbStore.open({ ...settings, events }, log.child({ component: 'rethinkdb' }));
  }
}

/** Parts a caller (a test, an embedding program) may supply instead of those `startCfgd` builds. */
export interface CfgdOverrides {
  /** Used instead of the one `settings.store` names; the caller closes it. */
  readonly store?: ConfigStore | undefined;
  /** Used instead of the grant-based authorizer (or, with auth off, instead of allowing all). */
  readonly authorizer?: Authorizer;
  readonly clock?: () => Date;
  /** Run in order around every call of both transports, outside authentication (see `RequestPipeline`). */
  readonly interceptors?: readonly Interceptor[];
  /** Set in a worker process of `--workers N`: its number, and how to reach the other workers. */
  readonly worker?: WorkerPeers | undefined;
}

interface Security {
  readonly registry: CredentialRegistry | undefined;
  readonly authorizer: Authorizer;
  /** Undefined with authentication off: every caller is anonymous. */
  readonly authenticate: Authenticate | undefined;
  close(): void;
}

/**
 * Authentication and authorization as the settings ask: with auth on, the
 * bootstrap admin token, the in-memory registry that follows the store, the
 * authenticator (tokens, JWTs, client certificates) as the pipeline's
 * authentication step, and the grant authorizer; with auth off, everyone is anonymous
 * and allowed everything, and a warning says so.
 */
async function startSecurity(
  settings: CfgdSettings,
  store: ConfigStore,
  log: Logger,
  clock: () => Date,
  overrides: CfgdOverrides,
): Promise<Security> {
  const authLog = log.child({ component: 'auth' });
  if (settings.auth.mode === 'off') {
    authLog.warn(
      'authentication is off (--auth off): every caller is anonymous and may read, write and watch everything',
    );
    return { registry: undefined, authorizer: overrides.authorizer ?? allowAll, authenticate: undefined, close() {} };
  }
  await ensureAdminToken({
    credentials: store.credentials,
    adminToken: settings.auth.adminToken,
    tokenFile: settings.store.kind === 'embedded' ? join(settings.store.path, 'admin.token') : undefined,
    clock,
    log: authLog,
  });
  const jwt = settings.auth.jwt === undefined ? undefined : await JwtVerifier.load(settings.auth.jwt);
  const registry = await CredentialRegistry.open(store.credentials, authLog);
  const grants = new GrantAuthorizer(registry, clock);
  return {
    registry,
    authorizer: overrides.authorizer ?? grants,
    authenticate: authentication(new Authenticator({ registry, jwt, clock })),
    close() {
      grants.close();
      registry.close();
    },
  };
}

function readTls(settings: CfgdSettings): TlsMaterial | undefined {
  const tls = settings.tls;
  if (tls === undefined) return undefined;
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    clientCa: tls.clientCaFile === undefined ? undefined : readFileSync(tls.clientCaFile),
  };
}

export async function startCfgd(
  settings: CfgdSettings,
  log: Logger,
  overrides: CfgdOverrides = {},
): Promise<RunningCfgd> {
  const ownsStore = overrides.store === undefined;
  const tls = readTls(settings);
  const clock = overrides.clock ?? (() => new Date());
  const metrics = settings.metrics === 'off' ? undefined : new CfgdMetrics();
  const backend = overrides.store ?? (await createStore(settings.store, log, metrics?.storeEvents()));
  // What the app uses: the backend, its operations timed when metrics are on.
  const store = metrics === undefined ? backend : metrics.instrument(backend);
  const health = new HealthMonitor({
    store: backend,
    intervalMs: settings.healthCheckMs,
    log: log.child({ component: 'health' }),
  });
  let security: Security;
  try {
    await health.start();
    security = await startSecurity(settings, store, log, clock, overrides);
  } catch (error: unknown) {
    health.stop();
    if (ownsStore) await backend.close();
    throw error;
  }
  const watchHub = new WatchHub({
    store,
    maxQueuedEvents: settings.watchQueueEvents,
    heartbeatMs: settings.heartbeatMs,
    log: log.child({ component: 'watch' }),
  });
  const schemaChecks = new SchemaChecks(new SchemaCompiler());
  const pruner = new Pruner({
    store,
    defaultMaxVersions: settings.maxVersions,
    log: log.child({ component: 'retention' }),
  });
  const app = new ConfigApp({
    store,
    watchHub,
    authorizer: security.authorizer,
    schemaChecks,
    pruner,
    limits: settings.limits,
    clock,
    peers: overrides.worker?.peers,
    worker: overrides.worker?.number,
  });
  const lifecycleApp = new LifecycleApp({
    store,
    authorizer: security.authorizer,
    schemaChecks,
    pruner,
    limits: settings.limits,
    clock,
    defaultMaxVersions: settings.maxVersions,
  });
  const schemaApp = new SchemaApp({
    store,
    authorizer: security.authorizer,
    schemaChecks,
    pruner,
    limits: settings.limits,
    clock,
  });
  const authApp = new AuthApp({
    credentials: store.credentials,
    registry: security.registry,
    authorizer: security.authorizer,
    clock,
  });
  const fleetApp = new FleetApp({
    store,
    authorizer: security.authorizer,
    clock,
    instanceTtlMs: settings.instanceTtlMs,
    maxInstances: settings.maxInstances,
    log: log.child({ component: 'fleet' }),
  });
  // Each service once, for both transports.
  const services = [
    {
      name: 'cfgd.v1.ConfigService',
      definition: ConfigServiceService,
      methods: {
        ...configServiceMethods(app),
        ...renderMethods(app),
        ...lifecycleMethods(lifecycleApp),
        ...schemaMethods(schemaApp),
      },
    },
    { name: 'cfgd.v1.AuthService', definition: AuthServiceService, methods: { ...authServiceMethods(authApp) } },
    { name: 'cfgd.v1.StatusService', definition: StatusServiceService, methods: { ...statusServiceMethods(app) } },
    { name: 'cfgd.v1.FleetService', definition: FleetServiceService, methods: { ...fleetServiceMethods(fleetApp) } },
  ];
  metrics?.follow(app, health);
  const registry = loadRegistry();
  const serviceNames = services.map(({ name }) => name);
  const scrape = (): Promise<MetricsScrape> =>
    overrides.worker === undefined
      ? metrics!.scrape()
      : overrides.worker.gatherMetrics().then((parts) => aggregateScrape(parts));
  const routes = [
    ...legacyValuesRoutes(app),
    ...services.flatMap(({ name, definition, methods }) =>
      gatewayRoutes({ registry, service: name, methods, codecs: definition }),
    ),
    openApiRoute(openApiDocument({ registry, services: serviceNames, title: 'cfgd', version: 'v1' })),
    ...probeRoutes(health),
    ...(settings.consoleDir === undefined ? [] : consoleRoutes(loadConsoleFiles(settings.consoleDir))),
    ...(metrics === undefined ? [] : [metricsRoute(scrape, settings.metrics === 'open')]),
  ];
  const observer = combineObservers(
    [
      metrics?.callObserver(),
      accessLog({
        log: log.child({ component: 'access' }),
        level: settings.accessLog.level,
        sample: settings.accessLog.sample,
      }),
    ].filter((each) => each !== undefined),
  );
  const grpcHealth = new GrpcHealth(health, serviceNames);
  const pipeline = new RequestPipeline(
    overrides.interceptors ?? [],
    log.child({ component: 'pipeline' }),
    security.authenticate,
  );
  const shutdown = new AbortController();
  let grpc: RunningGrpcServer | undefined;
  let rest: RunningRestServer | undefined;
  try {
    grpc = await startGrpcServer({
      address: settings.grpcAddress,
      services: services.map(({ name, definition, methods }) => ({
        definition,
        handlers: grpcHandlers({ service: name, methods, pipeline, shutdown: shutdown.signal, observer }),
      })),
      addOns: [grpcHealth, reflectionService()],
      // Room for values at the configured limit in protobuf form, which can be larger than JSON.
      maxReceiveMessageBytes: Math.max(4 * 1024 * 1024, 4 * settings.limits.maxBytes),
      keepaliveMs: settings.grpcKeepaliveMs,
      keepaliveTimeoutMs: settings.grpcKeepaliveTimeoutMs,
      tls,
    });
    rest = await startRestServer({
      address: settings.httpAddress,
      routes,
      pipeline,
      maxBodyBytes: settings.maxBodyBytes,
      log: log.child({ component: 'rest' }),
      shutdown: shutdown.signal,
      tls,
      observer,
    });
  } catch (error: unknown) {
    health.stop();
    grpcHealth.shutdown();
    await grpc?.shutdown(0);
    security.close();
    if (ownsStore) await backend.close();
    throw error;
  }
  const running = { grpc, rest };
  fleetApp.start();
  log.info(
    {
      grpc: `${hostOf(settings.grpcAddress)}:${grpc.port}`,
      http: `${hostOf(settings.httpAddress)}:${rest.port}`,
      store: describeStore(settings.store),
      tls: tls === undefined ? 'off' : tls.clientCa === undefined ? 'on' : 'on, client certificates required',
      auth: settings.auth.mode,
    },
    // A worker's line; the primary says `cfgd listening` once every worker does.
    overrides.worker === undefined ? 'cfgd listening' : 'worker listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpc.port,
    httpPort: rest.port,
    store: backend,
    app,
    registry: security.registry,
    metrics,
    health,
    rpcs: [
      ...services.flatMap(({ name, methods }) => Object.keys(methods).map((method) => `${name}/${method}`)),
      ...GrpcHealth.rpcs,
      ...REFLECTION_RPCS,
    ],
    routes: routes.map((route) => ({
      method: route.method,
      path: route.template.source,
      operation: route.name,
      streaming: route.streaming,
    })),
    stop: () =>
      (stopping ??= (async () => {
        // Not serving from here on: health watchers hear it before their streams end.
        health.stop();
        grpcHealth.shutdown();
        shutdown.abort(new CfgdError('unavailable', 'SERVER_SHUTTING_DOWN', 'cfgd is shutting down; reconnect'));
        await Promise.all([
          running.grpc.shutdown(settings.shutdownGraceMs),
          running.rest.shutdown(settings.shutdownGraceMs),
        ]);
        security.close();
        fleetApp.stop();
        await pruner.close();
        if (ownsStore) await backend.close();
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

export async function run(argv: string[]): Promise<void> {
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
  if (settings.workers > 1 && cluster.isWorker) {
    // One of the processes `startPrimary` forked.
    await runWorker(settings, log.child({ worker: Number(process.env[WORKER_ENV]) }), (overrides) =>
      startCfgd(settings, log.child({ worker: overrides.worker.number }), overrides),
    );
    return;
  }
  const server =
    settings.workers > 1
      ? await startPrimary(settings, log, describeStore(settings.store))
      : await startCfgd(settings, log);
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'shutting down');
    server.stop().then(
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
