import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_VALUE_LIMITS, type ValueLimits } from '../domain/index.js';
import { LOG_LEVELS, type LogLevel } from '../log/logger.js';

/** Where a RethinkDB store is and how to use it (the composition root hands these to the backend). */
export interface RethinkDbSettings {
  readonly kind: 'rethinkdb';
  readonly host: string;
  readonly port: number;
  readonly db: string;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /** Longest a query, a connection attempt or a whole write may take before UNAVAILABLE. */
  readonly timeoutMs: number;
  /** Replicas of each table, set at start; undefined leaves them as they are. */
  readonly replicas?: number | undefined;
}

export type StoreSettings =
  { readonly kind: 'embedded'; readonly path: string; readonly sync: 'full' | 'normal' } | RethinkDbSettings;

/** Files for serving TLS (PEM); with `clientCaFile`, clients must present a certificate it signed. */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile?: string | undefined;
}

/** Verifying JWTs of an outside issuer: one key source, the required issuer and audience. */
export interface JwtIssuerSettings {
  readonly jwksFile?: string | undefined;
  readonly publicKeyFile?: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  /** A claim holding grants (`verb:users/{u}/configs/{c}` strings), added to the principal's binding. */
  readonly grantsClaim?: string | undefined;
}

export interface AuthSettings {
  /** `off`: every caller is `anonymous` with every grant. */
  readonly mode: 'on' | 'off';
  /** The bootstrap admin token the operator chose (at least 32 characters), installed at start. */
  readonly adminToken?: string | undefined;
  /** Lets auth off listen on a non-loopback address. */
  readonly acceptOpenService: boolean;
  /** Lets plaintext (no TLS) listen on a non-loopback address, e.g. behind a TLS-terminating proxy. */
  readonly allowPlaintext: boolean;
  readonly jwt?: JwtIssuerSettings | undefined;
}

export interface CfgdSettings {
  /** `host:port` of the gRPC listener. */
  readonly grpcAddress: string;
  /** `host:port` of the REST listener. */
  readonly httpAddress: string;
  /** Largest accepted REST request body, in bytes. */
  readonly maxBodyBytes: number;
  /** Interval of PROGRESS messages on idle watch streams (gRPC and SSE); 0 sends none. */
  readonly heartbeatMs: number;
  /** Most events one watch stream may have waiting for its reader before it ends with RESOURCE_EXHAUSTED. */
  readonly watchQueueEvents: number;
  /** Versions kept per config by default (older ones are pruned in the background); 0 keeps every version. */
  readonly maxVersions: number;
  /** How often the gRPC server pings a connection to check that the client is still there. */
  readonly grpcKeepaliveMs: number;
  /** How long the gRPC server waits for a ping's answer before it closes the connection. */
  readonly grpcKeepaliveTimeoutMs: number;
  readonly store: StoreSettings;
  /**
   * Processes serving gRPC and REST on the same ports. With the embedded
   * store a further process (the primary) is its one writer.
   */
  readonly workers: number;
  readonly limits: ValueLimits;
  readonly logLevel: LogLevel;
  /** How long shutdown waits for running calls before cutting them. */
  readonly shutdownGraceMs: number;
  readonly auth: AuthSettings;
  /** Serve both listeners over TLS; undefined: plaintext (allowed on loopback only, unless `auth.allowPlaintext`). */
  readonly tls?: TlsSettings | undefined;
  /**
   * `GET /metrics`: `authenticated` (any valid credential, even one without
   * grants; open with auth off), `open` (no credential), or `off` (neither
   * served nor recorded).
   */
  readonly metrics: MetricsAccess;
  readonly accessLog: AccessLogSettings;
  /** How often the store is probed for the health service and `/readyz`. */
  readonly healthCheckMs: number;
  /** Fleet convergence: how long an instance may stay silent before its reports are forgotten. */
  readonly instanceTtlMs: number;
  /** Fleet convergence: the most live instances one config keeps reports of. */
  readonly maxInstances: number;
  /** Where the built web console is served from at `/ui/`; undefined: not served. */
  readonly consoleDir: string | undefined;
}

export const METRICS_ACCESS = ['authenticated', 'open', 'off'] as const;
export type MetricsAccess = (typeof METRICS_ACCESS)[number];

/** One log line per request, at `level`; successful requests sampled at `sample` (failed ones always). */
export interface AccessLogSettings {
  readonly level: LogLevel;
  /** Share of successful requests logged, 0 to 1. */
  readonly sample: number;
}

export const DEFAULTS: CfgdSettings = {
  grpcAddress: '127.0.0.1:50051',
  httpAddress: '127.0.0.1:5000',
  maxBodyBytes: 4 * 1024 * 1024,
  heartbeatMs: 5000,
  watchQueueEvents: 1000,
  maxVersions: 0,
  grpcKeepaliveMs: 30_000,
  grpcKeepaliveTimeoutMs: 10_000,
  store: { kind: 'embedded', path: './data', sync: 'full' },
  workers: availableParallelism(),
  limits: DEFAULT_VALUE_LIMITS,
  logLevel: 'info',
  shutdownGraceMs: 5000,
  auth: { mode: 'on', acceptOpenService: false, allowPlaintext: false },
  metrics: 'authenticated',
  accessLog: { level: 'debug', sample: 1 },
  healthCheckMs: 2000,
  instanceTtlMs: 300_000,
  maxInstances: 1000,
  consoleDir: join(packageRoot(), 'dist', 'console'),
};

/** Shortest bootstrap admin token an operator may choose. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/** Every setting: its flag, its environment variable and what it means. */
export const SETTINGS = {
  'grpc-addr': { env: 'CFGD_GRPC_ADDR', help: 'host:port of the gRPC listener' },
  'http-addr': { env: 'CFGD_HTTP_ADDR', help: 'host:port of the REST listener' },
  store: {
    env: 'CFGD_STORE',
    help: 'backend: a directory (or embedded:<dir>) for the embedded store, or rethinkdb://[user[:password]@]host[:port]/db',
  },
  'db-timeout-ms': { env: 'CFGD_DB_TIMEOUT_MS', help: 'rethinkdb: longest a query may take before UNAVAILABLE' },
  'db-replicas': {
    env: 'CFGD_DB_REPLICAS',
    help: 'rethinkdb: replicas of each table, set when cfgd starts (default: leave them as they are)',
  },
  workers: {
    env: 'CFGD_WORKERS',
    help: 'processes serving gRPC and REST on the same ports (default: one per core; 1 serves from one process)',
  },
  sync: { env: 'CFGD_SYNC', help: 'embedded store durability: full (fsync each commit) or normal' },
  'max-values-bytes': { env: 'CFGD_MAX_VALUES_BYTES', help: 'largest accepted values, JSON-encoded, in bytes' },
  'max-depth': { env: 'CFGD_MAX_DEPTH', help: 'deepest accepted nesting of values' },
  'max-body-bytes': { env: 'CFGD_MAX_BODY_BYTES', help: 'largest accepted REST request body in bytes' },
  'heartbeat-ms': { env: 'CFGD_HEARTBEAT_MS', help: 'interval of PROGRESS messages on idle watch streams (0: none)' },
  'watch-queue': {
    env: 'CFGD_WATCH_QUEUE',
    help: 'most events a watch stream may hold for a slow reader before it ends with RESOURCE_EXHAUSTED',
  },
  'max-versions': {
    env: 'CFGD_MAX_VERSIONS',
    help: 'versions kept per config unless it sets its own limit; older ones are pruned (0: keep every version)',
  },
  'grpc-keepalive-ms': { env: 'CFGD_GRPC_KEEPALIVE_MS', help: "interval of the gRPC server's keepalive pings" },
  'grpc-keepalive-timeout-ms': {
    env: 'CFGD_GRPC_KEEPALIVE_TIMEOUT_MS',
    help: 'how long an unanswered keepalive ping waits before the connection is closed',
  },
  'log-level': { env: 'CFGD_LOG_LEVEL', help: `one of ${LOG_LEVELS.join(', ')}` },
  'shutdown-grace-ms': { env: 'CFGD_SHUTDOWN_GRACE_MS', help: 'how long shutdown waits for running calls' },
  metrics: {
    env: 'CFGD_METRICS',
    help: 'GET /metrics: authenticated (default: any valid credential), open, or off (not served nor recorded)',
  },
  'access-log-level': {
    env: 'CFGD_ACCESS_LOG_LEVEL',
    help: `level of the one log line per request (default debug: shown with --log-level debug); one of ${LOG_LEVELS.join(', ')}`,
  },
  'access-log-sample': {
    env: 'CFGD_ACCESS_LOG_SAMPLE',
    help: 'share of successful requests logged, 0 to 1 (default 1); failed requests are always logged',
  },
  'health-check-ms': {
    env: 'CFGD_HEALTH_CHECK_MS',
    help: 'how often the store is probed for the gRPC health service and /readyz',
  },
  'instance-ttl-ms': {
    env: 'CFGD_INSTANCE_TTL_MS',
    help: 'fleet convergence: an instance silent this long is forgotten (default 300000)',
  },
  'console-dir': {
    env: 'CFGD_CONSOLE_DIR',
    help: "the built web console served at /ui/ (default: the package's dist/console); off: not served",
  },
  'max-instances': {
    env: 'CFGD_MAX_INSTANCES',
    help: 'fleet convergence: the most live instances one config keeps reports of (default 1000)',
  },
  auth: {
    env: 'CFGD_AUTH',
    help: 'on (default): every call needs credentials; off: everyone is anonymous with every grant',
  },
  'admin-token': {
    env: 'CFGD_ADMIN_TOKEN',
    help: `bootstrap admin token (at least ${MIN_ADMIN_TOKEN_LENGTH} characters), installed as token "admin" at start`,
  },
  'accept-open-service': {
    env: 'CFGD_ACCEPT_OPEN_SERVICE',
    help: 'true: allow --auth off on a non-loopback address (anyone who can connect can do anything)',
    boolean: true,
  },
  'allow-plaintext': {
    env: 'CFGD_ALLOW_PLAINTEXT',
    help: 'true: allow plaintext (no TLS) on a non-loopback address, e.g. behind a TLS-terminating proxy',
    boolean: true,
  },
  'tls-cert': { env: 'CFGD_TLS_CERT', help: 'PEM certificate chain: serve gRPC and REST over TLS' },
  'tls-key': { env: 'CFGD_TLS_KEY', help: 'PEM private key of --tls-cert' },
  'tls-client-ca': {
    env: 'CFGD_TLS_CLIENT_CA',
    help: "PEM CA bundle: require client certificates it signed; the subject is the caller's principal",
  },
  'jwt-jwks': { env: 'CFGD_JWT_JWKS', help: 'JWKS file with the public keys of the JWT issuer' },
  'jwt-public-key': { env: 'CFGD_JWT_PUBLIC_KEY', help: 'PEM public key (or certificate) of the JWT issuer' },
  'jwt-issuer': { env: 'CFGD_JWT_ISSUER', help: 'required iss of accepted JWTs' },
  'jwt-audience': { env: 'CFGD_JWT_AUDIENCE', help: 'required aud of accepted JWTs' },
  'jwt-grants-claim': {
    env: 'CFGD_JWT_GRANTS_CLAIM',
    help: 'JWT claim with grants (["read:users/u/configs/*", …]), added to the binding of jwt:<sub>',
  },
} as const satisfies Record<string, { env: string; help: string; boolean?: true }>;

type SettingName = keyof typeof SETTINGS;

export class SettingsError extends Error {
  override name = 'SettingsError';
}

/**
 * The one place that reads configuration: defaults, overridden by `CFGD_*`
 * environment variables, overridden by command-line flags. Throws
 * `SettingsError` with a readable message for anything it cannot use.
 */
export function loadSettings(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): CfgdSettings {
  const options = Object.fromEntries(
    Object.entries(SETTINGS).map(([name, setting]) => [
      name,
      { type: 'boolean' in setting ? ('boolean' as const) : ('string' as const) },
    ]),
  );
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean' } }, strict: true }).values;
  } catch (error: unknown) {
    throw new SettingsError(error instanceof Error ? error.message : String(error));
  }
  const pick = (name: SettingName): string | undefined => {
    const flag = flags[name];
    if (typeof flag === 'boolean') return String(flag);
    return typeof flag === 'string' ? flag : env[SETTINGS[name].env];
  };

  const grpcAddress = parseAddress('grpc-addr', pick('grpc-addr')) ?? DEFAULTS.grpcAddress;
  const httpAddress = parseAddress('http-addr', pick('http-addr')) ?? DEFAULTS.httpAddress;
  const auth = parseAuth(pick);
  const tls = parseTls(pick);
  const exposed = [grpcAddress, httpAddress].filter((address) => !isLoopback(hostOf(address)));
  if (exposed.length > 0 && auth.mode === 'off' && !auth.acceptOpenService) {
    throw new SettingsError(
      `--auth off on a non-loopback address (${exposed.join(', ')}) would let anyone who can connect read and overwrite every config; ` +
        `listen on 127.0.0.1, turn auth on, or add ${describe('accept-open-service')}`,
    );
  }
  if (exposed.length > 0 && tls === undefined && !auth.allowPlaintext) {
    throw new SettingsError(
      `plaintext on a non-loopback address (${exposed.join(', ')}) would send tokens in the clear; ` +
        `give --tls-cert and --tls-key, or add ${describe('allow-plaintext')} (e.g. behind a TLS-terminating proxy)`,
    );
  }

  const store = parseStore(
    pick('store'),
    pick('sync'),
    parseInteger('db-timeout-ms', pick('db-timeout-ms'), 1) ?? 5000,
    parseInteger('db-replicas', pick('db-replicas'), 1),
  );
  return {
    grpcAddress,
    httpAddress,
    maxBodyBytes: parseInteger('max-body-bytes', pick('max-body-bytes'), 1) ?? DEFAULTS.maxBodyBytes,
    heartbeatMs: parseInteger('heartbeat-ms', pick('heartbeat-ms'), 0) ?? DEFAULTS.heartbeatMs,
    watchQueueEvents: parseInteger('watch-queue', pick('watch-queue'), 1) ?? DEFAULTS.watchQueueEvents,
    maxVersions: parseInteger('max-versions', pick('max-versions'), 0) ?? DEFAULTS.maxVersions,
    grpcKeepaliveMs: parseInteger('grpc-keepalive-ms', pick('grpc-keepalive-ms'), 1) ?? DEFAULTS.grpcKeepaliveMs,
    grpcKeepaliveTimeoutMs:
      parseInteger('grpc-keepalive-timeout-ms', pick('grpc-keepalive-timeout-ms'), 1) ??
      DEFAULTS.grpcKeepaliveTimeoutMs,
    store,
    workers: parseWorkers(pick('workers'), store),
    limits: {
      maxBytes: parseInteger('max-values-bytes', pick('max-values-bytes'), 1) ?? DEFAULTS.limits.maxBytes,
      maxDepth: parseInteger('max-depth', pick('max-depth'), 1) ?? DEFAULTS.limits.maxDepth,
    },
    logLevel: parseChoice('log-level', pick('log-level'), LOG_LEVELS) ?? DEFAULTS.logLevel,
    shutdownGraceMs: parseInteger('shutdown-grace-ms', pick('shutdown-grace-ms'), 0) ?? DEFAULTS.shutdownGraceMs,
    auth,
    ...(tls === undefined ? {} : { tls }),
    metrics: parseChoice('metrics', pick('metrics'), METRICS_ACCESS) ?? DEFAULTS.metrics,
    accessLog: {
      level: parseChoice('access-log-level', pick('access-log-level'), LOG_LEVELS) ?? DEFAULTS.accessLog.level,
      sample: parseFraction('access-log-sample', pick('access-log-sample')) ?? DEFAULTS.accessLog.sample,
    },
    healthCheckMs: parseInteger('health-check-ms', pick('health-check-ms'), 1) ?? DEFAULTS.healthCheckMs,
    instanceTtlMs: parseInteger('instance-ttl-ms', pick('instance-ttl-ms'), 1000) ?? DEFAULTS.instanceTtlMs,
    maxInstances: parseInteger('max-instances', pick('max-instances'), 1) ?? DEFAULTS.maxInstances,
    consoleDir: consoleDir(pick('console-dir')),
  };
}

type Pick = (name: SettingName) => string | undefined;

/** Most worker processes: far more than cores only adds memory and context switches. */
const MAX_WORKERS = 64;

function parseWorkers(raw: string | undefined, store: StoreSettings): number {
  const workers = parseInteger('workers', raw, 1);
  if (workers !== undefined && workers > MAX_WORKERS) {
    throw new SettingsError(`${describe('workers')} must be at most ${MAX_WORKERS}, got ${workers}`);
  }
  // An in-memory database belongs to one process.
  if (store.kind === 'embedded' && store.path === ':memory:') {
    if (workers !== undefined && workers > 1) {
      throw new SettingsError(
        `${describe('workers')} must be 1 with an in-memory store (${describe('store')} :memory:)`,
      );
    }
    return 1;
  }
  return workers ?? DEFAULTS.workers;
}

function parseAuth(pick: Pick): AuthSettings {
  const mode = parseChoice('auth', pick('auth'), ['on', 'off'] as const) ?? DEFAULTS.auth.mode;
  const adminToken = pick('admin-token');
  if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    // Never echo the token.
    throw new SettingsError(
      `${describe('admin-token')} must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters, got ${adminToken.length}`,
    );
  }
  if (adminToken !== undefined && mode === 'off') {
    throw new SettingsError(`${describe('admin-token')} has no use with --auth off`);
  }
  const jwtIssuer = pick('jwt-issuer');
  const jwtAudience = pick('jwt-audience');
  const jwksFile = pick('jwt-jwks');
  const publicKeyFile = pick('jwt-public-key');
  const grantsClaim = pick('jwt-grants-claim');
  let jwt: JwtIssuerSettings | undefined;
  const given = [jwtIssuer, jwtAudience, jwksFile, publicKeyFile, grantsClaim].some((value) => value !== undefined);
  if (given) {
    if ((jwksFile === undefined) === (publicKeyFile === undefined)) {
      throw new SettingsError(
        `JWT verification needs exactly one of ${describe('jwt-jwks')} and ${describe('jwt-public-key')}`,
      );
    }
    if (jwtIssuer === undefined || jwtIssuer === '' || jwtAudience === undefined || jwtAudience === '') {
      throw new SettingsError(`JWT verification needs ${describe('jwt-issuer')} and ${describe('jwt-audience')}`);
    }
    jwt = { jwksFile, publicKeyFile, issuer: jwtIssuer, audience: jwtAudience, grantsClaim };
  }
  return {
    mode,
    ...(adminToken === undefined ? {} : { adminToken }),
    acceptOpenService: parseBoolean('accept-open-service', pick('accept-open-service')) ?? false,
    allowPlaintext: parseBoolean('allow-plaintext', pick('allow-plaintext')) ?? false,
    ...(jwt === undefined ? {} : { jwt }),
  };
}

function parseTls(pick: Pick): TlsSettings | undefined {
  const certFile = pick('tls-cert');
  const keyFile = pick('tls-key');
  const clientCaFile = pick('tls-client-ca');
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) {
      throw new SettingsError(`${describe('tls-client-ca')} needs ${describe('tls-cert')} and ${describe('tls-key')}`);
    }
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new SettingsError(`${describe('tls-cert')} and ${describe('tls-key')} go together`);
  }
  return { certFile, keyFile, ...(clientCaFile === undefined ? {} : { clientCaFile }) };
}

function parseBoolean(name: SettingName, raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no', ''].includes(raw)) return false;
  throw new SettingsError(`${describe(name)} must be true or false, got "${raw}"`);
}

/** The host part of `host:port`, without IPv6 brackets. */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Usage text for `--help`. */
export function usage(): string {
  const lines = Object.entries(SETTINGS).map(([flag, s]) => `  --${flag.padEnd(26)} ${s.env.padEnd(31)} ${s.help}`);
  return ['usage: cfgd [flags]   (flags override CFGD_* environment variables)', ...lines].join('\n');
}

function describe(name: SettingName): string {
  return `--${name} (${SETTINGS[name].env})`;
}

function parseAddress(name: SettingName, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const match = /^(.*):(\d+)$/.exec(raw);
  if (match === null || match[1] === '' || Number(match[2]) > 65535) {
    throw new SettingsError(`${describe(name)} must be host:port, got "${raw}"`);
  }
  return raw;
}

function parseInteger(name: SettingName, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new SettingsError(`${describe(name)} must be a whole number >= ${min}, got "${raw}"`);
  }
  return value;
}

function parseFraction(name: SettingName, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new SettingsError(`${describe(name)} must be a number from 0 to 1, got "${raw}"`);
  }
  return value;
}

function parseChoice<T extends string>(
  name: SettingName,
  raw: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (raw === undefined) return undefined;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new SettingsError(`${describe(name)} must be one of ${choices.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function parseStore(
  raw: string | undefined,
  sync: string | undefined,
  timeoutMs: number,
  replicas: number | undefined,
): StoreSettings {
  const syncMode = parseChoice('sync', sync, ['full', 'normal'] as const) ?? 'full';
  if (raw === undefined || !raw.startsWith('rethinkdb://')) {
    if (replicas !== undefined) throw new SettingsError(`${describe('db-replicas')} is for a rethinkdb:// store`);
  }
  if (raw === undefined) return { kind: 'embedded', path: './data', sync: syncMode };
  if (raw.startsWith('rethinkdb://')) return { ...parseRethinkDbUrl(raw, timeoutMs), replicas };
  const path = raw.startsWith('embedded:') ? raw.slice('embedded:'.length) : raw;
  if (path === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new SettingsError(`${describe('store')} must be a directory, embedded:<dir> or rethinkdb://…, got "${raw}"`);
  }
  return { kind: 'embedded', path, sync: syncMode };
}

function parseRethinkDbUrl(raw: string, timeoutMs: number): RethinkDbSettings {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SettingsError(`${describe('store')} is not a valid URL: "${raw}"`);
  }
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (url.hostname === '' || !/^[A-Za-z0-9_]+$/.test(db)) {
    throw new SettingsError(
      `${describe('store')} must be rethinkdb://[user[:password]@]host[:port]/db with a database name of A-Z a-z 0-9 _, got "${raw}"`,
    );
  }
  return {
    kind: 'rethinkdb',
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 28015 : Number(url.port),
    db,
    user: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    timeoutMs,
  };
}

/** `--console-dir`: a directory, `off`, or (unset) the package's own build. */
function consoleDir(raw: string | undefined): string | undefined {
  if (raw === undefined) return DEFAULTS.consoleDir;
  if (raw.trim() === '') throw new SettingsError(`${describe('console-dir')} must be a directory or off, got ""`);
  return raw === 'off' ? undefined : resolve(raw);
}

/** The directory of cfgd's package.json: above this module, from src/ or from dist/src/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}
