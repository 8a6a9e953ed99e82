import { describe, expect, it } from 'vitest';
import { SettingsError, DEFAULTS, loadSettings } from '../../src/settings/settings.js';

describe('loadSettings', () => {
  it('uses the defaults with no environment and no flags', () => {
    expect(loadSettings([], {})).toEqual(DEFAULTS);
  });

  it('reads CFGD_* variables, and flags override them', () => {
    const env = {
      CFGD_GRPC_ADDR: '0.0.0.0:6000',
      CFGD_STORE: '/var/lib/cfgd',
      CFGD_MAX_DEPTH: '8',
      CFGD_SYNC: 'normal',
    };
    const fromEnv = loadSettings([], env);
    expect(fromEnv.grpcAddress).toBe('0.0.0.0:6000');
    expect(fromEnv.store).toEqual({ kind: 'embedded', path: '/var/lib/cfgd', sync: 'normal' });
    expect(fromEnv.limits.maxDepth).toBe(8);
    const fromFlags = loadSettings(['--grpc-addr', '127.0.0.1:7000', '--store', 'embedded:./x', '--max-depth=4'], env);
    expect(fromFlags.grpcAddress).toBe('127.0.0.1:7000');
    expect(fromFlags.store).toEqual({ kind: 'embedded', path: './x', sync: 'normal' });
    expect(fromFlags.limits.maxDepth).toBe(4);
  });

  it('reads the watch settings: progress interval (0 turns it off), queue bound and gRPC keepalive', () => {
    const settings = loadSettings(['--heartbeat-ms', '0', '--watch-queue', '250', '--grpc-keepalive-ms', '15000'], {
      CFGD_GRPC_KEEPALIVE_TIMEOUT_MS: '3000',
      CFGD_WATCH_QUEUE: '9',
    });
    expect(settings).toMatchObject({
      heartbeatMs: 0,
      watchQueueEvents: 250,
      grpcKeepaliveMs: 15000,
      grpcKeepaliveTimeoutMs: 3000,
    });
    expect(() => loadSettings(['--watch-queue', '0'], {})).toThrow(SettingsError);
    expect(() => loadSettings(['--grpc-keepalive-ms', 'soon'], {})).toThrow(/--grpc-keepalive-ms/);
  });

  it('reads a RethinkDB store URL with credentials and a query timeout', () => {
    const settings = loadSettings(
      ['--store', 'rethinkdb://cfgd:s%40cret@db.internal:29015/cfgd_prod', '--db-timeout-ms', '2500'],
      {},
    );
    expect(settings.store).toEqual({
      kind: 'rethinkdb',
      host: 'db.internal',
      port: 29015,
      db: 'cfgd_prod',
      user: 'cfgd',
      password: 's@cret',
      timeoutMs: 2500,
      replicas: undefined,
    });
    expect(loadSettings([], { CFGD_STORE: 'rethinkdb://localhost/cfgd' }).store).toEqual({
      kind: 'rethinkdb',
      host: 'localhost',
      port: 28015,
      db: 'cfgd',
      user: undefined,
      password: undefined,
      timeoutMs: 5000,
      replicas: undefined,
    });
    expect(loadSettings(['--db-replicas', '3'], { CFGD_STORE: 'rethinkdb://localhost/cfgd' }).store).toMatchObject({
      kind: 'rethinkdb',
      replicas: 3,
    });
  });

  it.each([
    [['--store', 'rethinkdb://host'], /with a database name/],
    [['--store', 'rethinkdb://host/bad-name'], /with a database name/],
    [['--grpc-addr', 'nohost'], /--grpc-addr \(CFGD_GRPC_ADDR\) must be host:port/],
    [['--max-values-bytes=-5'], /must be a whole number >= 1/],
    [['--max-depth', 'deep'], /must be a whole number/],
    [['--log-level', 'loud'], /must be one of/],
    [['--sync', 'sometimes'], /must be one of full, normal/],
    [['--store', 'mysql://x'], /must be a directory, embedded:<dir> or rethinkdb/],
    [['--db-replicas', '2'], /--db-replicas \(CFGD_DB_REPLICAS\) is for a rethinkdb:\/\/ store/],
    [
      ['--store', 'rethinkdb://h/db', '--db-replicas', '0'],
      /--db-replicas \(CFGD_DB_REPLICAS\) must be a whole number >= 1/,
    ],
    [['--unknown'], /Unknown option/],
  ])('rejects %j with a readable message', (argv, message) => {
    expect(() => loadSettings(argv, {})).toThrow(SettingsError);
    expect(() => loadSettings(argv, {})).toThrow(message);
  });
});
