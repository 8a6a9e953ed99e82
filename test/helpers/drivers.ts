import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { ChangeAction, type Change } from '../../generated/cfgd/v1/config_service.js';
import { collect, statusDetails, TestClient } from './client.js';
import { http, sendJson } from './http.js';
import { SseClient } from './sse.js';

export interface Key {
  readonly userId: string;
  readonly configName: string;
}

export interface PlainChange {
  readonly action: string;
  readonly key: string;
  readonly value: unknown;
  readonly oldValue?: unknown;
}

/** A failed call, the same shape whichever transport made it. */
export class CallError extends Error {
  constructor(
    readonly status: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** One API, two transports: the same scenario bodies run against each. */
export interface Driver {
  readonly name: string;
  put(
    key: Key,
    values: Record<string, unknown>,
    expectedVersion?: number,
    options?: { readonly validateOnly?: boolean },
  ): Promise<{ version: number; changed: boolean; changes: PlainChange[] }>;
  get(key: Key, version?: number): Promise<{ version: number; values: unknown; latestVersion: number }>;
  history(
    key: Key,
    page: { pageSize?: number; pageToken?: string; startVersion?: number },
  ): Promise<{ versions: number[]; changes: PlainChange[][]; nextPageToken: string }>;
  /** Opens a watch from `startVersion`, collects `count` events, closes it; resolves with their versions. */
  watch(key: Key, startVersion: number | undefined, count: number, onOpen?: () => Promise<void>): Promise<number[]>;
}

const ACTION_NAMES: Record<number, string> = {
  [ChangeAction.CHANGE_ACTION_ADDED]: 'added',
  [ChangeAction.CHANGE_ACTION_UPDATED]: 'updated',
  [ChangeAction.CHANGE_ACTION_REMOVED]: 'removed',
};

function fromGrpcChange(change: Change): PlainChange {
  const action = ACTION_NAMES[change.action] ?? 'unknown';
  return action === 'updated'
    ? { action, key: change.key, value: change.value, oldValue: change.oldValue }
    : { action, key: change.key, value: change.value };
}

function fromRestChange(change: any): PlainChange {
  const action = String(change.action).replace('CHANGE_ACTION_', '').toLowerCase();
  return action === 'updated'
    ? { action, key: change.key, value: change.value, oldValue: change.old_value }
    : { action, key: change.key, value: change.value };
}

async function grpcCall<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error: unknown) {
    const e = error as ServiceError;
    throw new CallError(GrpcStatus[e.code], statusDetails(e).errorInfo?.reason ?? '', e.details);
  }
}

export function grpcDriver(port: number): Driver & { close(): void } {
  const client = new TestClient(port);
  return {
    name: 'gRPC',
    close: () => client.close(),
    async put(key, values, expectedVersion, options) {
      const res = await grpcCall(
        client.put({ ...key, values, expectedVersion, validateOnly: options?.validateOnly === true }),
      );
      return {
        version: res.config!.version,
        changed: res.changed,
        changes: res.auditEntry!.changes.map(fromGrpcChange),
      };
    },
    async get(key, version = 0) {
      const res = await grpcCall(client.get({ ...key, version }));
      return { version: res.config!.version, values: res.config!.values, latestVersion: res.latestVersion };
    },
    async history(key, page) {
      const res = await grpcCall(client.history({ ...key, ...page }));
      return {
        versions: res.entries.map((e) => e.version),
        changes: res.entries.map((e) => e.changes.map(fromGrpcChange)),
        nextPageToken: res.nextPageToken,
      };
    },
    async watch(key, startVersion, count, onOpen) {
      const stream = client.watch({ ...key, startVersion });
      const result = collect(stream, (events) => events.length >= count);
      await new Promise((resolve) => stream.once('metadata', resolve));
      await onOpen?.();
      const { events, error } = await result;
      if (error !== undefined) throw error;
      return events.map((e) => e.config!.version);
    },
  };
}

function restError(res: { status: number; json: any }): never {
  const error = res.json?.error;
  throw new CallError(error?.status ?? `HTTP ${res.status}`, error?.details?.[0]?.reason ?? '', error?.message ?? '');
}

export function restDriver(port: number): Driver {
  const path = (key: Key): string =>
    `/v1/users/${encodeURIComponent(key.userId)}/configs/${encodeURIComponent(key.configName)}`;
  return {
    name: 'REST',
    async put(key, values, expectedVersion, options) {
      const params = new URLSearchParams();
      if (expectedVersion !== undefined) params.set('expected_version', String(expectedVersion));
      if (options?.validateOnly === true) params.set('validate_only', 'true');
      const query = params.size === 0 ? '' : `?${params.toString()}`;
      const res = await sendJson(port, 'PUT', `${path(key)}${query}`, values);
      if (res.status !== 200) restError(res);
      return {
        version: Number(res.json.config.version),
        changed: res.json.changed,
        changes: res.json.audit_entry.changes.map(fromRestChange),
      };
    },
    async get(key, version = 0) {
      const res = await http(port, 'GET', `${path(key)}?version=${version}`);
      if (res.status !== 200) restError(res);
      return {
        version: Number(res.json.config.version),
        values: res.json.config.values,
        latestVersion: Number(res.json.latest_version),
      };
    },
    async history(key, page) {
      const query = new URLSearchParams();
      if (page.pageSize !== undefined) query.set('page_size', String(page.pageSize));
      if (page.pageToken) query.set('page_token', page.pageToken);
      if (page.startVersion !== undefined) query.set('start_version', String(page.startVersion));
      const res = await http(port, 'GET', `${path(key)}/history?${query.toString()}`);
      if (res.status !== 200) restError(res);
      return {
        versions: res.json.entries.map((e: any) => Number(e.version)),
        changes: res.json.entries.map((e: any) => e.changes.map(fromRestChange)),
        nextPageToken: res.json.next_page_token,
      };
    },
    async watch(key, startVersion, count, onOpen) {
      const query = startVersion === undefined ? '' : `?start_version=${startVersion}`;
      const { client, res } = await SseClient.open(port, `${path(key)}:watch${query}`);
      if (res.statusCode !== 200) {
        client.close();
        throw new CallError(`HTTP ${res.statusCode}`, '', '');
      }
      try {
        await onOpen?.();
        await client.until((c) => c.messages().length >= count);
        return client.messages().map((m) => Number(m.config.version));
      } finally {
        client.close();
      }
    },
  };
}
