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
      CFGD_ALLOW_PLAINTEXT: 'true',
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

  describe('authentication and TLS', () => {
    const token = 'x'.repeat(32);

    it('is on by default, and --auth off / CFGD_AUTH=off turns it off', () => {
      expect(loadSettings([], {}).auth).toEqual({ mode: 'on', acceptOpenService: false, allowPlaintext: false });
      expect(loadSettings(['--auth', 'off'], {}).auth.mode).toBe('off');
      expect(loadSettings([], { CFGD_AUTH: 'off' }).auth.mode).toBe('off');
      expect(loadSettings(['--auth=on'], { CFGD_AUTH: 'off' }).auth.mode).toBe('on');
      expect(() => loadSettings(['--auth', 'maybe'], {})).toThrow(/--auth \(CFGD_AUTH\) must be one of on, off/);
    });

    it('takes an operator admin token of 32 characters or more, and never echoes a short one', () => {
      expect(loadSettings([], { CFGD_ADMIN_TOKEN: token }).auth.adminToken).toBe(token);
      const short = 'short-secret-value';
      let message = '';
      try {
        loadSettings(['--admin-token', short], {});
      } catch (error: unknown) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/at least 32 characters, got 18/);
      expect(message).not.toContain(short);
      expect(() => loadSettings(['--auth', 'off', '--admin-token', token], {})).toThrow(/no use with --auth off/);
    });

    it('refuses auth off on a non-loopback address unless the operator accepts an open service', () => {
      const open = ['--auth', 'off', '--http-addr', '0.0.0.0:5000', '--allow-plaintext'];
      expect(() => loadSettings(open, {})).toThrow(/--auth off on a non-loopback address \(0\.0\.0\.0:5000\)/);
      expect(loadSettings([...open, '--accept-open-service'], {}).auth).toMatchObject({
        mode: 'off',
        acceptOpenService: true,
      });
      expect(loadSettings(open, { CFGD_ACCEPT_OPEN_SERVICE: 'true' }).auth.acceptOpenService).toBe(true);
      expect(() => loadSettings(open, { CFGD_ACCEPT_OPEN_SERVICE: 'sure' })).toThrow(/must be true or false/);
      for (const loopback of ['127.0.0.1:1', '127.9.9.9:1', 'localhost:1', '[::1]:1']) {
        expect(loadSettings(['--auth', 'off', '--grpc-addr', loopback], {}).grpcAddress).toBe(loopback);
      }
    });

    it('serves plaintext on a non-loopback address only with TLS or an explicit --allow-plaintext', () => {
      expect(() => loadSettings(['--grpc-addr', '10.0.0.5:50051'], {})).toThrow(/plaintext on a non-loopback/);
      expect(loadSettings(['--grpc-addr', '10.0.0.5:50051', '--allow-plaintext'], {}).auth.allowPlaintext).toBe(true);
      const tls = loadSettings(['--grpc-addr', '10.0.0.5:50051', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], {});
      expect(tls.tls).toEqual({ certFile: 'c.pem', keyFile: 'k.pem' });
      expect(loadSettings([], { CFGD_TLS_CERT: 'c', CFGD_TLS_KEY: 'k', CFGD_TLS_CLIENT_CA: 'ca' }).tls).toEqual({
        certFile: 'c',
        keyFile: 'k',
        clientCaFile: 'ca',
      });
      expect(() => loadSettings(['--tls-cert', 'c.pem'], {})).toThrow(/go together/);
      expect(() => loadSettings(['--tls-client-ca', 'ca.pem'], {})).toThrow(/needs --tls-cert/);
    });

    it('reads a JWT issuer: one key source, issuer and audience required', () => {
      expect(
        loadSettings(['--jwt-jwks', 'keys.json', '--jwt-issuer', 'https://issuer', '--jwt-audience', 'cfgd'], {}).auth
          .jwt,
      ).toEqual({
        jwksFile: 'keys.json',
        publicKeyFile: undefined,
        issuer: 'https://issuer',
        audience: 'cfgd',
        grantsClaim: undefined,
      });
      expect(() => loadSettings(['--jwt-issuer', 'i', '--jwt-audience', 'a'], {})).toThrow(/exactly one of/);
      expect(() =>
        loadSettings(['--jwt-jwks', 'k', '--jwt-public-key', 'p', '--jwt-issuer', 'i', '--jwt-audience', 'a'], {}),
      ).toThrow(/exactly one of/);
      expect(() => loadSettings(['--jwt-public-key', 'p.pem', '--jwt-issuer', 'i'], {})).toThrow(/--jwt-audience/);
    });
  });
});
