import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { StoreSettings } from '../../src/settings/settings.js';

/** The RethinkDB server of this test run (reqlite, or RETHINKDB_URL). */
export function rethinkdbUrl(): string {
  return inject('rethinkdbUrl');
}

/** True when the tests run against RethinkDB itself (`npm run test:rethinkdb`), not reqlite. */
export function rethinkdbIsReal(): boolean {
  return inject('rethinkdbReal');
}

/** A database name no other test file uses. */
export function freshDatabase(prefix: string): string {
  return `cfgd_${prefix}_${randomBytes(4).toString('hex')}`;
}

/** Store settings for a fresh database (or the given one) on the test server. */
export function rethinkStoreConfig(db: string, timeoutMs = 5000): Extract<StoreSettings, { kind: 'rethinkdb' }> {
  const url = new URL(rethinkdbUrl());
  return {
    kind: 'rethinkdb',
    host: url.hostname,
    port: Number(url.port || 28015),
    db,
    user: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    timeoutMs,
  };
}

/** The `--store` URL for a cfgd process on the given database. */
export function rethinkStoreUrl(db: string, port?: number): string {
  const url = new URL(rethinkdbUrl());
  if (port !== undefined) url.port = String(port);
  url.pathname = `/${db}`;
  return url.toString();
}
