import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawHttpConnection, type RawResponse } from '../helpers/fuzz-http.js';
import {
  expectErrorBody,
  expectNoInternals,
  fuzzSettings,
  Outcomes,
  type LoggedServer,
  startFuzzTarget,
  type FuzzTarget,
} from '../helpers/fuzz-support.js';
import { http } from '../helpers/http.js';

/**
 * Fuzzes the REST port below HTTP: seeded random bytes shaped like requests
 * (bad request lines, bad header syntax, conflicting or bad lengths, bad
 * chunked encoding, truncated bodies, oversized headers), each on a fresh
 * TCP connection that is then half-closed or dropped. Whatever Node's parser
 * makes of it, the server must answer with a complete response in the
 * documented shape, or close; never hang, never 5xx, never log an error.
 * Replay a failure with the printed CFGD_FUZZ_SEED.
 */

const settings = fuzzSettings('fuzz-raw-http', 800);
const started = Date.now();
const outcomes = new Outcomes();

let target: FuzzTarget;
let server: LoggedServer;
let port: number;

beforeAll(async () => {
  target = await startFuzzTarget({ maxBodyBytes: 64 * 1024, heartbeatMs: 0 });
  server = target.server;
  port = server.cfgd.httpPort;
});
afterAll(async () => {
  await server.stop();
  console.log(`fuzz-raw-http: ${((Date.now() - started) / 1000).toFixed(1)} s; answers: ${String(outcomes)}`);
});

const method = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH'),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'G ET', 'get', 'GET\u0000', 'FOO', '\u007f', 'PRI', 'GETT', 'PUT/', 'M-SEARCH'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** Targets; the seeded configs' user appears only under methods that cannot write. */
const writableTarget = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '/v1/status',
      '/v1/users/fz-raw/configs/c',
      '/values/fz-raw/c',
      '/v1/users/fz-raw/configs/c/history',
      '/v1/users/fz-raw/configs/c:watch',
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '*',
      '',
      'http://x/v1/status',
      'http://[',
      'https://x:99999/v1/status',
      'ftp://x/',
      'x:1',
      '//x/v1/status',
      '/v1/status#frag',
      '/v1/../v1/status',
      '/%',
      '/\u0000',
      '/ /',
      '/\u007f',
      '/\u00ff',
      '/v1/users/%zz/configs/%',
      '/v1/users/a/configs/b?%=%&&=',
      `/${'a'.repeat(20_000)}`,
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);
const readOnlyTarget = fc.constantFrom(
  '/v1/users/seed-keeper/configs/kept-0',
  '/values/seed-keeper/kept-1',
  '/v1/users/seed-keeper/configs/kept-2/history',
);

const version = fc.constantFrom(
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/1.2',
  'HTTP/2.0',
  'HTTP/0.9',
  'http/1.1',
  'HTTP/1',
  'HTTP/1.1 x',
  '',
  'HTTP/11',
  'HTTP/1.1\u0000',
);

const headerLine = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'host: fz',
      'content-type: application/json',
      'connection: close',
      'connection: keep-alive',
      'expect: 100-continue',
      'expect: x',
      'accept: */*',
      'upgrade: websocket',
      'last-event-id: 3',
      'if-match: "1"',
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'no-colon-here',
      ' leading: space',
      'bad name: x',
      'x-null\u0000: y',
      'x: a\u0000b',
      'x :y',
      'x:\u0001',
      'x-fold: a\r\n  folded',
      ':empty-name',
      'host: a\r\nhost: b',
      'content-length: -1',
      'content-length: abc',
      'content-length: 1, 2',
      'content-length: 99999999999999999999',
      'content-length: 5\r\ncontent-length: 6',
      'content-length: 5',
      'content-length: 0',
      'content-length: 7',
      'transfer-encoding: chunked',
      'transfer-encoding: gzip',
      'transfer-encoding: chunked, gzip',
      'transfer-encoding: identity',
      'transfer-encoding: xchunked',
      'last-event-id: x',
      'if-match: nope',
      `x-big: ${'a'.repeat(17_000)}`,
      Array.from({ length: 2500 }, (_, i) => `x-${i}: v`).join('\r\n'),
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

const body = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      '{"a":1}',
      '{"a":',
      '5\r\nhello\r\n0\r\n\r\n',
      '7\r\n{"a":1}\r\n0\r\n\r\n',
      'zz\r\nx\r\n0\r\n\r\n',
      '-1\r\nx\r\n',
      'fffffffffffffffff\r\n',
      '5\r\nhel',
      `5;ext=${'e'.repeat(20_000)}\r\nhello\r\n0\r\n\r\n`,
      '5\r\nhelloXX0\r\n\r\n',
      '0\r\nbad trailer\r\n\r\n',
      '0\r\n\r\nGET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n',
      '\r\n\r\n\r\n',
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')) },
);

interface RawCase {
  readonly method: string;
  readonly bytes: Buffer;
  /** `finish`: half-close after sending, so the server knows no more is coming; `drop`: hang up. */
  readonly ending: 'finish' | 'drop';
}

const rawCase: fc.Arbitrary<RawCase> = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.tuple(method, writableTarget) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom('GET', 'HEAD', 'FOO'), readOnlyTarget) },
    ),
    version,
    fc.constantFrom('\r\n', '\r\n', '\n', '\r'),
    fc.array(headerLine, { maxLength: 6 }),
    body,
    fc.constantFrom('', '', '\r\n'),
    fc.constantFrom('finish', 'finish', 'finish', 'drop'),
  )
  .map(([[verb, target], httpVersion, eol, headers, payload, prefix, ending]) => {
    const text = `${prefix}${verb} ${target} ${httpVersion}${eol}${headers.map((h) => `${h}${eol}`).join('')}${eol}${payload}`;
    const bytes = Buffer.from(text, 'latin1');
    const described = JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text);
    return Object.defineProperty({ method: verb, bytes, ending }, fc.toStringMethod, {
      value: () => `${ending} ${described}`,
    });
  });

function checkResponse(res: RawResponse, head: boolean, what: string): void {
  outcomes.add(String(res.status));
  expect(res.status, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  expectNoInternals(res.body, what);
  if (res.status >= 400 && !(head && res.body === '')) expectErrorBody(res.status, res.body, what);
}

describe('raw HTTP fuzz', () => {
  it(
    'malformed HTTP gets a complete answer in the documented shape, or a close; never a hang or a 5xx',
    async () => {
      const property = fc.asyncProperty(rawCase, async (c) => {
        const what = String((c as unknown as Record<symbol, () => string>)[fc.toStringMethod]?.());
        const connection = await RawHttpConnection.open(port);
        try {
          connection.write(c.bytes);
          if (c.ending === 'drop') {
            // A client that hangs up mid-request: whatever came back must still be well formed.
            await new Promise((resolve) => setTimeout(resolve, 5));
            const res = await connection.read({ head: c.method === 'HEAD', timeoutMs: 1 }).catch(() => undefined);
            if (res !== undefined) checkResponse(res, c.method === 'HEAD', what);
            return;
          }
          connection.finish();
          // Every response until the server closes (pipelined bytes may make several).
          for (let i = 0; i < 4; i++) {
            const res = await connection.read({ head: c.method === 'HEAD', timeoutMs: 5000 });
            if (res === undefined) outcomes.add(i === 0 ? 'closed without an answer' : 'closed');
            if (res === undefined || res.streaming) break;
            checkResponse(res, c.method === 'HEAD', what);
          }
        } finally {
          connection.close();
        }
      });
      await fc.assert(property, { seed: settings.seed, numRuns: settings.runs });
    },
    settings.timeoutMs,
  );

  it('afterwards: the server answers, logged no error, holds no stream, and the seeded configs are byte-for-byte unchanged', async () => {
    expect((await http(port, 'GET', '/v1/status')).status).toBe(200);
    expect((await server.client().status()).watchStreams).toBeDefined();
    expect(server.logs.some((line) => 'rawPacket' in line)).toBe(false);
    await target.expectUntouched();
  });
});
