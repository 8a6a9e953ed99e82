import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';
import { medianGapMs } from '../helpers/timing.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let port: number;

beforeAll(async () => {
  server = await startTestServer({ heartbeatMs: 100 });
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

const versionsOf = (client: SseClient): number[] => client.messages().map((m) => Number(m.config.version));
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Watch over Server-Sent Events', () => {
  it('streams one event per version, id = version, while another client writes', async () => {
    const path = '/v1/users/sse/configs/live';
    await sendJson(port, 'PUT', path, { n: 1 });
    const { client, res } = await SseClient.open(port, `${path}:watch?start_version=0`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    for (let n = 2; n <= 20; n++) await sendJson(port, 'PUT', path, { n });
    await client.until((c) => c.messages().length === 20);
    expect(versionsOf(client)).toEqual(range(1, 20));
    expect(client.events.map((e) => e.id)).toEqual(range(1, 20).map(String));
    const last = client.messages()[19];
    expect(last.config.values).toEqual({ n: 20 });
    expect(last.audit_entry.changes).toEqual([{ action: 'CHANGE_ACTION_UPDATED', key: 'n', value: 20, old_value: 19 }]);
    client.close();
  });

  it('resumes with Last-Event-ID, losing and repeating nothing, while writes go on', async () => {
    const path = '/v1/users/sse/configs/resume';
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) await sendJson(port, 'PUT', path, { n: ++written });
    })();
    const seen: number[] = [];
    let lastId: string | undefined;
    for (let round = 0; round < 5; round++) {
      const headers: Record<string, string> = lastId === undefined ? {} : { 'last-event-id': lastId };
      const query = lastId === undefined ? '?start_version=0' : '';
      const { client } = await SseClient.open(port, `${path}:watch${query}`, headers);
      await client.until((c) => c.messages().length >= 10);
      client.close();
      seen.push(...versionsOf(client));
      lastId = client.events.filter((e) => e.event === 'message').at(-1)!.id;
    }
    writing = false;
    await writer;
    expect(seen).toEqual(range(1, seen.length));
  });

  it('sends PROGRESS messages while idle, one per --heartbeat-ms', async () => {
    const { client } = await SseClient.open(port, '/v1/users/sse/configs/idle:watch');
    const arrivals: number[] = [];
    await client.until((c) => {
      while (arrivals.length < c.progress()) arrivals.push(performance.now());
      return arrivals.length >= 8;
    });
    expect(client.messages()).toEqual([]);
    // The server is set to 100 ms: a median gap near 200 ms would mean every other tick is skipped.
    const median = medianGapMs(arrivals);
    expect(median).toBeGreaterThan(60);
    expect(median).toBeLessThan(150);
    // Progress events carry no id, so Last-Event-ID stays the last version.
    expect(client.events.every((e) => e.id === undefined)).toBe(true);
    client.close();
  });

  it('releases the subscription when the client goes away', async () => {
    // Streams of the earlier tests were closed by their clients: all of them are released.
    await eventually(() => expect(server.cfgd.store.stats().subscriptions).toBe(0));
    const before = 0;
    const clients = await Promise.all(
      [1, 2, 3].map(async () => (await SseClient.open(port, '/v1/users/sse/configs/gone:watch')).client),
    );
    // Three streams of one config share one store subscription.
    await eventually(() => expect(server.cfgd.app.stats().watches).toBe(before + 3));
    expect(server.cfgd.store.stats().subscriptions).toBe(before + 1);
    for (const client of clients) client.close();
    await eventually(() => expect(server.cfgd.store.stats().subscriptions).toBe(before));
    expect(server.cfgd.app.stats().watches).toBe(before);
  });

  it('answers invalid requests with an HTTP error before streaming', async () => {
    const { client, res } = await SseClient.open(port, '/v1/users/sse/configs/x:watch', { 'last-event-id': 'abc' });
    expect(res.statusCode).toBe(400);
    client.close();
    const bad = await SseClient.open(port, '/v1/users/bad%20name/configs/x:watch');
    expect(bad.res.statusCode).toBe(400);
    bad.client.close();
  });

  it('ends streams with an UNAVAILABLE error event when the server shuts down', async () => {
    const own = await startTestServer({ heartbeatMs: 50 });
    const { client } = await SseClient.open(own.cfgd.httpPort, '/v1/users/sse/configs/bye:watch');
    await client.until((c) => c.progress() >= 1);
    await own.stop();
    await client.until((c) => c.ended);
    const error = client.events.find((e) => e.event === 'error');
    expect(JSON.parse(error!.data).error).toMatchObject({ code: 503, status: 'UNAVAILABLE' });
  });
});
