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
  /** How often the gRPC server pings a connection to check that the client is still there. */
  readonly grpcKeepaliveMs: number;
  /** How long the gRPC server waits for a ping's answer before it closes the connection. */
  readonly grpcKeepaliveTimeoutMs: number;
  readonly store: StoreSettings;
  readonly limits: ValueLimits;
  readonly logLevel: LogLevel;
  /** How long shutdown waits for running calls before cutting them. */
  readonly shutdownGraceMs: number;
}

export const DEFAULTS: CfgdSettings = {
  grpcAddress: '127.0.0.1:50051',
  httpAddress: '127.0.0.1:5000',
  maxBodyBytes: 4 * 1024 * 1024,
  heartbeatMs: 5000,
  watchQueueEvents: 1000,
  grpcKeepaliveMs: 30_000,
  grpcKeepaliveTimeoutMs: 10_000,
  store: { kind: 'embedded', path: './data', sync: 'full' },
  limits: DEFAULT_VALUE_LIMITS,
  logLevel: 'info',
  shutdownGraceMs: 5000,
};

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
  sync: { env: 'CFGD_SYNC', help: 'embedded store durability: full (fsync each commit) or normal' },
  'max-values-bytes': { env: 'CFGD_MAX_VALUES_BYTES', help: 'largest accepted values, JSON-encoded, in bytes' },
  'max-depth': { env: 'CFGD_MAX_DEPTH', help: 'deepest accepted nesting of values' },
  'max-body-bytes': { env: 'CFGD_MAX_BODY_BYTES', help: 'largest accepted REST request body in bytes' },
  'heartbeat-ms': { env: 'CFGD_HEARTBEAT_MS', help: 'interval of PROGRESS messages on idle watch streams (0: none)' },
  'watch-queue': {
    env: 'CFGD_WATCH_QUEUE',
    help: 'most events a watch stream may hold for a slow reader before it ends with RESOURCE_EXHAUSTED',
  },
  'grpc-keepalive-ms': { env: 'CFGD_GRPC_KEEPALIVE_MS', help: "interval of the gRPC server's keepalive pings" },
  'grpc-keepalive-timeout-ms': {
    env: 'CFGD_GRPC_KEEPALIVE_TIMEOUT_MS',
    help: 'how long an unanswered keepalive ping waits before the connection is closed',
  },
  'log-level': { env: 'CFGD_LOG_LEVEL', help: `one of ${LOG_LEVELS.join(', ')}` },
  'shutdown-grace-ms': { env: 'CFGD_SHUTDOWN_GRACE_MS', help: 'how long shutdown waits for running calls' },
} as const;

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
  const options = Object.fromEntries(Object.keys(SETTINGS).map((name) => [name, { type: 'string' as const }]));
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean' } }, strict: true }).values;
  } catch (error: unknown) {
    throw new SettingsError(error instanceof Error ? error.message : String(error));
  }
  const pick = (name: SettingName): string | undefined => {
    const flag = flags[name];
    return typeof flag === 'string' ? flag : env[SETTINGS[name].env];
  };

  return {
    grpcAddress: parseAddress('grpc-addr', pick('grpc-addr')) ?? DEFAULTS.grpcAddress,
    httpAddress: parseAddress('http-addr', pick('http-addr')) ?? DEFAULTS.httpAddress,
    maxBodyBytes: parseInteger('max-body-bytes', pick('max-body-bytes'), 1) ?? DEFAULTS.maxBodyBytes,
    heartbeatMs: parseInteger('heartbeat-ms', pick('heartbeat-ms'), 0) ?? DEFAULTS.heartbeatMs,
    watchQueueEvents: parseInteger('watch-queue', pick('watch-queue'), 1) ?? DEFAULTS.watchQueueEvents,
    grpcKeepaliveMs: parseInteger('grpc-keepalive-ms', pick('grpc-keepalive-ms'), 1) ?? DEFAULTS.grpcKeepaliveMs,
    grpcKeepaliveTimeoutMs:
      parseInteger('grpc-keepalive-timeout-ms', pick('grpc-keepalive-timeout-ms'), 1) ??
      DEFAULTS.grpcKeepaliveTimeoutMs,
    store: parseStore(
      pick('store'),
      pick('sync'),
      parseInteger('db-timeout-ms', pick('db-timeout-ms'), 1) ?? 5000,
      parseInteger('db-replicas', pick('db-replicas'), 1),
    ),
    limits: {
      maxBytes: parseInteger('max-values-bytes', pick('max-values-bytes'), 1) ?? DEFAULTS.limits.maxBytes,
      maxDepth: parseInteger('max-depth', pick('max-depth'), 1) ?? DEFAULTS.limits.maxDepth,
    },
    logLevel: parseChoice('log-level', pick('log-level'), LOG_LEVELS) ?? DEFAULTS.logLevel,
    shutdownGraceMs: parseInteger('shutdown-grace-ms', pick('shutdown-grace-ms'), 0) ?? DEFAULTS.shutdownGraceMs,
  };
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
