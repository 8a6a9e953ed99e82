import { pino } from 'pino';
import { expect } from 'vitest';
import type { CfgdSettings } from '../../src/settings/settings.js';
import type { RunningCfgd } from '../../src/main.js';
import type { TestClient } from './client.js';
import { consoleFixture, startTestServer } from './server.js';
import { eventually } from './wait.js';
import { http, sendJson } from './http.js';

/**
 * What the fuzz suite and the hostile-input tests share: the seed and size
 * of a run, a server whose log lines the test can read, the configs seeded
 * before the fuzzing with a byte-exact snapshot of them, and the checks
 * every answer must pass.
 */

export interface FuzzSettings {
  readonly seed: number;
  /** How many cases each property runs. */
  readonly runs: number;
  /** A test timeout that grows with `runs`. */
  readonly timeoutMs: number;
}

/**
 * The seed (`CFGD_FUZZ_SEED`, else a fresh one) and the cases per property
 * (`CFGD_FUZZ_ITERATIONS`, else `defaultRuns`), printed so that a failing
 * run can be replayed exactly: the same seed gives the same requests.
 */
export function fuzzSettings(suite: string, defaultRuns: number): FuzzSettings {
  const seedText = process.env.CFGD_FUZZ_SEED;
  const seed = seedText === undefined || seedText === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  if (!Number.isSafeInteger(seed)) throw new Error(`CFGD_FUZZ_SEED must be an integer, got ${seedText}`);
  const runsText = process.env.CFGD_FUZZ_ITERATIONS;
  const runs = runsText === undefined || runsText === '' ? defaultRuns : Number(runsText);
  if (!Number.isSafeInteger(runs) || runs < 1)
    throw new Error(`CFGD_FUZZ_ITERATIONS must be a positive integer, got ${runsText}`);
  console.log(`${suite}: fuzz seed ${seed}, ${runs} cases per property (replay: CFGD_FUZZ_SEED=${seed})`);
  return { seed, runs, timeoutMs: 60_000 + runs * 200 };
}

export interface LogLine {
  readonly level: number;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export interface LoggedServer {
  readonly cfgd: RunningCfgd;
  /** Every line cfgd logged, parsed, debug level and up. */
  readonly logs: LogLine[];
  client(): TestClient;
  stop(): Promise<void>;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/**
 * cfgd in this process on 127.0.0.1:0 with a fresh embedded store, like
 * `startTestServer`, but logging at debug level into `logs` so that a test
 * can assert what was logged and at which level.
 */
export async function startLoggedServer(overrides: Partial<CfgdSettings> = {}): Promise<LoggedServer> {
  const logs: LogLine[] = [];
  const destination = { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) };
  // A console build, so that the hostile suites reach every answer of the /ui/ routes.
  const server = await startTestServer(
    { consoleDir: consoleFixture(), ...overrides },
    'normal',
    pino({ level: 'debug' }, destination),
  );
  return { ...server, logs };
}

/** Log lines at error level or above: each one would be a server fault a person must look at. */
export function errorLogs(logs: readonly LogLine[]): LogLine[] {
  return logs.filter((line) => line.level >= LEVEL.error);
}

/** A config written before the fuzzing that no rejected request may change. */
export interface SeededConfig {
  readonly userId: string;
  readonly configName: string;
}

/**
 * Seeds configs with several versions each, over /v1 and legacy REST, with
 * keys that have tripped JavaScript servers before. Their user ids are used
 * by nothing else, so only a request that should have failed could touch them.
 */
export async function seedConfigs(httpPort: number): Promise<SeededConfig[]> {
  const seeded: SeededConfig[] = [];
  const histories: Record<string, unknown>[][] = [
    [{ a: 1 }, { a: 2, b: [1, 2, { c: null }] }, { b: 'x', constructor: 'c', prototype: { p: true } }],
    [
      { '': 'empty key', ['k'.repeat(300)]: 1 },
      { '': 'still', 'ünï©ødé': '☃', nested: { deeper: { deepest: [0.5, -1, 1e21] } } },
    ],
    [{ toString: 1, valueOf: 2, hasOwnProperty: 3 }, { toString: 4 }],
  ];
  for (const [i, versions] of histories.entries()) {
    const key = { userId: 'seed-keeper', configName: `kept-${i}` };
    for (const values of versions) {
      const res = await sendJson(httpPort, 'PUT', `/v1/users/${key.userId}/configs/${key.configName}`, values);
      if (res.status !== 200) throw new Error(`seeding failed: ${res.status} ${res.text}`);
    }
    seeded.push(key);
  }
  // One through the legacy route, with a __proto__ key as that route stores it today.
  const legacy = { userId: 'seed-keeper', configName: 'kept-legacy' };
  for (const body of ['{"v":1,"__proto__":{"x":1}}', '{"v":2,"__proto__":{"x":2},"w":[true,false]}']) {
    const res = await http(httpPort, 'POST', `/values/${legacy.userId}/${legacy.configName}`, {
      body,
      headers: { 'content-type': 'application/json' },
    });
    if (res.status !== 200) throw new Error(`seeding failed: ${res.status} ${res.text}`);
  }
  seeded.push(legacy);
  return seeded;
}

/**
 * The full text of what cfgd answers about each seeded config: /v1 Get and
 * History, the legacy document, and gRPC Get and History. Compared as
 * strings before and after the fuzzing, so any change at all shows.
 */
export async function snapshotConfigs(
  httpPort: number,
  client: TestClient,
  seeded: readonly SeededConfig[],
): Promise<string[]> {
  const texts: string[] = [];
  for (const { userId, configName } of seeded) {
    const path = `/v1/users/${userId}/configs/${configName}`;
    for (const url of [path, `${path}/history?page_size=1000`, `/values/${userId}/${configName}`]) {
      const res = await http(httpPort, 'GET', url);
      texts.push(`${res.status} ${url}\n${res.text}`);
    }
    const get = await client.get({ userId, configName });
    const history = await client.history({ userId, configName, pageSize: 1000 });
    texts.push(`grpc Get ${path}\n${JSON.stringify(get)}`, `grpc History ${path}\n${JSON.stringify(history)}`);
  }
  return texts;
}

/** gRPC codes' names, the `status` field of a REST error body. */
const GRPC_NAMES = new Set([
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

/**
 * Fails when a response body shows server internals: a stack frame
 * (`at fn (file:line:col)`), a path of this checkout or of Node's internals.
 */
export function expectNoInternals(body: string, what: string): void {
  expect(body, `${what}: a stack frame in the body`).not.toMatch(/\bat [^\n]*:\d+:\d+\)?/);
  for (const marker of [process.cwd(), 'node_modules', 'node:internal', 'file://']) {
    expect(body.includes(marker), `${what}: "${marker}" in the body`).toBe(false);
  }
}

/**
 * The documented REST error shape: exactly `{"error": {code, status,
 * message, details}}`, `code` equal to the HTTP status, `status` a gRPC code
 * name, a non-empty message and an ErrorInfo first among the details.
 */
export function expectErrorBody(status: number, body: string, what: string): void {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`${what}: error body is not JSON: ${JSON.stringify(body.slice(0, 300))}`);
  }
  expect(Object.keys(json as object), what).toEqual(['error']);
  const error = (json as { error: Record<string, unknown> }).error;
  expect(Object.keys(error).sort(), what).toEqual(['code', 'details', 'message', 'status']);
  expect(error.code, what).toBe(status);
  expect(GRPC_NAMES.has(error.status as string), `${what}: status ${String(error.status)}`).toBe(true);
  expect(typeof error.message === 'string' && error.message.length > 0, `${what}: message`).toBe(true);
  const details = error.details as { '@type'?: unknown; reason?: unknown; domain?: unknown }[];
  expect(Array.isArray(details), `${what}: details`).toBe(true);
  expect(details[0]?.['@type'], what).toBe('type.googleapis.com/google.rpc.ErrorInfo');
  expect(details[0]?.reason, what).toMatch(/^[A-Z][A-Z0-9_]*$/);
  expect(details[0]?.domain, what).toBe('cfgd.v1');
}

/** A short, printable description of a fuzz input for failure messages. */
export function describeInput(value: unknown, max = 400): string {
  const text = Buffer.isBuffer(value) ? JSON.stringify(value.toString('latin1')) : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

/** A route the REST server serves, as the gateway derived it. */
export interface ServedRoute {
  readonly method: string;
  /** The path template, e.g. `/v1/users/{user_id}/configs/{config_name}:watch`. */
  readonly template: string;
  /** Answers Server-Sent Events (a server-streaming RPC). */
  readonly streaming: boolean;
}

/**
 * Every route a running cfgd serves, as `startCfgd` built them (the gateway
 * reads the protos' annotations), so a route added to the protos is covered
 * without touching the tests.
 */
export function servedRoutes(cfgd: RunningCfgd): ServedRoute[] {
  return cfgd.routes.map((route) => ({ method: route.method, template: route.path, streaming: route.streaming }));
}

/** A route's template with its variables filled in (values percent-encoded unless `raw`). */
export function fillTemplate(template: string, values: Record<string, string>, raw = false): string {
  return template.replace(/\{([^}=]+)(?:=[^}]*)?\}/g, (_match, field: string) => {
    const value = values[field] ?? 'x';
    return raw ? value : encodeURIComponent(value);
  });
}

/** Counts of what a fuzz run got back, printed at its end so that a run shows what it exercised. */
export class Outcomes {
  private readonly counts = new Map<string, number>();

  add(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
  }

  toString(): string {
    return [...this.counts]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([outcome, n]) => `${outcome} ×${n}`)
      .join(', ');
  }
}

/** A server for a fuzz suite, with configs seeded before the fuzzing and their snapshot. */
export interface FuzzTarget {
  readonly server: LoggedServer;
  readonly seeded: SeededConfig[];
  /** Fails unless, after the fuzzing, no stream is left open, nothing was logged at error level,
   *  and every seeded config reads byte for byte as before. */
  expectUntouched(): Promise<void>;
}

export async function startFuzzTarget(overrides: Partial<CfgdSettings> = {}): Promise<FuzzTarget> {
  const server = await startLoggedServer(overrides);
  const port = server.cfgd.httpPort;
  const seeded = await seedConfigs(port);
  const before = await snapshotConfigs(port, server.client(), seeded);
  return {
    server,
    seeded,
    async expectUntouched() {
      await eventually(() => expect(server.cfgd.app.stats().watches).toBe(0));
      expect(errorLogs(server.logs)).toEqual([]);
      expect(await snapshotConfigs(port, server.client(), seeded)).toEqual(before);
    },
  };
}
