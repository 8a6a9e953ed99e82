/**
 * Watch streams held open for long: progress messages, keepalive, flow
 * control for readers that stop reading, and what a node reports about them.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WatchEventType, type WatchResponse } from '../../generated/cfgd/v1/config_service.js';
import { collect, opened, statusDetails, TestClient } from '../helpers/client.js';
import { spawnCfgd } from '../helpers/process.js';
import { TcpProxy } from '../helpers/proxy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';
import { medianGapMs } from '../helpers/timing.js';
import { eventually } from '../helpers/wait.js';
import { http } from '../helpers/http.js';
import { writeVersions } from '../helpers/writes.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const started = await startTestServer(overrides);
  cleanups.push(() => started.stop());
  return started;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('progress messages', () => {
  it('an idle gRPC stream receives PROGRESS at the configured interval; a busy one does not need them', async () => {
    const node = await server({ heartbeatMs: 100 });
    const client = node.client();
    const key = { userId: 'progress', configName: 'idle' };
    const stream = client.watch(key);
    const arrivals: number[] = [];
    stream.on('data', (event: WatchResponse) => {
      if (event.type === WatchEventType.WATCH_EVENT_TYPE_PROGRESS) arrivals.push(performance.now());
    });
    const { events } = await collect(stream, () => arrivals.length >= 8);
    expect(events).toEqual([]);
    // One per interval: the median gap is near 100 ms (a stream that skipped every other tick would
    // show 200 ms). Timers are not exact, so only a range is asserted.
    const median = medianGapMs(arrivals);
    expect(median).toBeGreaterThan(60);
    expect(median).toBeLessThan(150);
  });

  it('a PROGRESS message carries its type and nothing else', async () => {
    const node = await server({ heartbeatMs: 50 });
    const client = node.client();
    const first = await new Promise<WatchResponse>((resolve) => {
      const stream = client.watch({ userId: 'progress', configName: 'shape' });
      stream.once('data', (event: WatchResponse) => {
        resolve(event);
        stream.cancel();
      });
      stream.on('error', () => {});
    });
    expect(first).toEqual({ type: WatchEventType.WATCH_EVENT_TYPE_PROGRESS, config: undefined, auditEntry: undefined });
  });

  it('with --heartbeat-ms 0 no PROGRESS is sent', async () => {
    const node = await server({ heartbeatMs: 0 });
    const stream = node.client().watch({ userId: 'progress', configName: 'off' });
    const result = collect(stream, () => false);
    await opened(stream);
    setTimeout(() => stream.cancel(), 400);
    expect((await result).progress).toBe(0);
  });
});

describe('keepalive', () => {
  it('drops a client that stopped answering, releasing its streams', async () => {
    const node = await server({ grpcKeepaliveMs: 200, grpcKeepaliveTimeoutMs: 200, heartbeatMs: 0 });
    const proxy = await TcpProxy.start(node.cfgd.grpcPort);
    cleanups.push(() => proxy.stop());
    const vanishing = new TestClient(proxy.port, { ownConnection: true });
    cleanups.push(() => vanishing.close());
    const stream = vanishing.watch({ userId: 'keepalive', configName: 'c' });
    stream.on('error', () => {});
    await opened(stream);
    await eventually(() => expect(node.cfgd.app.stats().watches).toBe(1));
    // The client's host vanishes: no FIN, no RST, nothing answers the server's pings.
    proxy.freeze();
    const frozenAt = performance.now();
    await eventually(() => expect(node.cfgd.app.stats()).toMatchObject({ watches: 0, channels: 0 }), 5000);
    expect(node.cfgd.store.stats().subscriptions).toBe(0);
    console.log(
      `keepalive: a vanished client was dropped ${(performance.now() - frozenAt).toFixed(0)} ms after it stopped answering`,
    );
  });
});

describe('flow control', () => {
  it('a reader that never reads while 20,000 versions are written: bounded buffer, RESOURCE_EXHAUSTED, a lossless resume', async () => {
    const bound = 1000;
    const total = 20_000;
    // The server runs as a process of its own, so that its memory is measured apart from the clients'.
    const dataDir = mkdtempSync(join(tmpdir(), 'cfgd-flow-'));
    const cfgd = await spawnCfgd([
      '--store',
      dataDir,
      '--sync',
      'normal',
      '--watch-queue',
      String(bound),
      '--heartbeat-ms',
      '0',
    ]);
    cleanups.push(async () => {
      cfgd.child.kill('SIGTERM');
      await cfgd.exited;
      rmSync(dataDir, { recursive: true, force: true });
    });
    const key = { userId: 'flow', configName: 'firehose' };
    const writer = new TestClient(cfgd.grpcPort);
    // Each watcher has a connection of its own, as separate sidecars would.
    const slowClient = new TestClient(cfgd.grpcPort, { ownConnection: true });
    const fastClient = new TestClient(cfgd.grpcPort, { ownConnection: true });
    cleanups.push(
      () => writer.close(),
      () => slowClient.close(),
      () => fastClient.close(),
    );
    const baseline = await writer.status();

    const slow = slowClient.watch({ ...key, startVersion: 0 });
    const slowEvents: number[] = [];
    let slowError: ServiceError | undefined;
    const slowEnded = new Promise<void>((resolve) => {
      slow.on('error', (error: ServiceError) => {
        slowError = error;
        resolve();
      });
      slow.on('end', resolve);
    });
    slow.on('data', (event: WatchResponse) => slowEvents.push(event.config!.version));
    await opened(slow);
    slow.pause(); // From here on the client takes nothing from the connection.

    const fast = fastClient.watch({ ...key, startVersion: 0 });
    let fastLast = 0;
    let fastInOrder = true;
    let fastError: ServiceError | undefined;
    const fastDone = new Promise<void>((resolve) => {
      fast.on('data', (event: WatchResponse) => {
        const version = event.config!.version;
        if (version !== fastLast + 1) fastInOrder = false;
        fastLast = version;
        if (version === total) resolve();
      });
      fast.on('error', (error: ServiceError) => {
        fastError = error;
        resolve();
      });
    });
    await opened(fast);

    const samples: { queued: number; heap: number; rss: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await writer.status();
        samples.push({ queued: s.queuedEvents, heap: s.heapUsedBytes, rss: s.rssBytes });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    await writeVersions(writer, key, total, 4, 'x'.repeat(200));
    await fastDone;
    sampling = false;
    await sampler;

    // The others kept receiving everything, in order, once.
    expect(fastError).toBeUndefined();
    expect(fastInOrder).toBe(true);
    expect(fastLast).toBe(total);

    // The stalled stream was cut off, not buffered: queues never held much more than the bound per stream.
    const maxQueued = Math.max(...samples.map((s) => s.queued));
    expect(maxQueued).toBeLessThanOrEqual(2 * bound);
    const after = await writer.status();
    expect(after.overflowedStreams).toBe(1);
    expect(after.watchStreams).toBe(1);
    const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `flow control: ${total} versions with a stalled reader: events queued at most ${maxQueued} (bound ${bound}); ` +
        `server heap ${mib(baseline.heapUsedBytes)} MiB before, at most ${mib(Math.max(...samples.map((s) => s.heap)))} MiB during; ` +
        `RSS ${mib(baseline.rssBytes)} MiB before, at most ${mib(Math.max(...samples.map((s) => s.rss)))} MiB during`,
    );

    // The slow reader reads again: what was sent before the status, then RESOURCE_EXHAUSTED saying where to resume.
    slow.resume();
    await slowEnded;
    expect(slowError?.code).toBe(status.RESOURCE_EXHAUSTED);
    const info = statusDetails(slowError!).errorInfo;
    expect(info?.reason).toBe('WATCH_READER_TOO_SLOW');
    const resumeFrom = Number(info?.metadata.resume_start_version);
    expect(slowError?.details).toContain(`resume with start_version=${resumeFrom}`);
    expect(slowEvents).toEqual(range(1, resumeFrom));
    expect(resumeFrom).toBeLessThan(total);

    // Resuming from the given version loses nothing.
    const resumed = await collect(
      slowClient.watch({ ...key, startVersion: resumeFrom }),
      (e) => e.at(-1)?.config?.version === total,
    );
    expect([...slowEvents, ...resumed.events.map((e) => e.config!.version)]).toEqual(range(1, total));

    // Nothing stays behind.
    fast.cancel();
    await eventually(async () =>
      expect(await writer.status()).toMatchObject({
        watchStreams: 0,
        watchChannels: 0,
        storeSubscriptions: 0,
        queuedEvents: 0,
      }),
    );
  }, 120_000);

  it('over SSE, a reader that stops reading gets an error event with RESOURCE_EXHAUSTED and the version to resume from', async () => {
    const node = await server({ watchQueueEvents: 50, heartbeatMs: 0 });
    const key = { userId: 'flow', configName: 'sse' };
    const { client: sse, res } = await SseClient.open(
      node.cfgd.httpPort,
      '/v1/users/flow/configs/sse:watch?start_version=0',
    );
    await eventually(() => expect(node.cfgd.app.stats().watches).toBe(1));
    res.pause();
    // Enough data to fill the socket buffers on both sides of the loopback connection.
    await writeVersions(node.client(), key, 1500, 8, 'y'.repeat(8 * 1024));
    await eventually(() => expect(node.cfgd.app.stats().overflowed).toBe(1));
    expect(node.cfgd.app.stats().watches).toBe(0);
    res.resume();
    await sse.until((c) => c.ended, 20_000);
    const error = sse.events.find((e) => e.event === 'error');
    const body = JSON.parse(error!.data).error;
    expect(body).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' });
    const resumeFrom = Number(body.details[0].metadata.resume_start_version);
    expect(sse.messages().map((m) => Number(m.config.version))).toEqual(range(1, resumeFrom));
  }, 60_000);
});

describe('visibility', () => {
  it('GetStatus reports open streams, shared channels and store subscriptions, over gRPC and REST', async () => {
    const node = await server({ heartbeatMs: 0 });
    const client = node.client();
    const idle = await client.status();
    expect(idle).toMatchObject({ watchStreams: 0, watchChannels: 0, storeSubscriptions: 0, queuedEvents: 0 });
    expect(idle.rssBytes).toBeGreaterThan(0);
    const streams = [
      client.watch({ userId: 'vis', configName: 'a' }),
      client.watch({ userId: 'vis', configName: 'a' }),
      client.watch({ userId: 'vis', configName: 'b' }),
      client.watch({ userId: 'vis' }),
    ];
    for (const stream of streams) stream.on('error', () => {});
    await Promise.all(streams.map(opened));
    expect(await client.status()).toMatchObject({ watchStreams: 4, watchChannels: 3, storeSubscriptions: 3 });
    const rest = await http(node.cfgd.httpPort, 'GET', '/v1/status');
    expect(rest.status).toBe(200);
    expect(rest.json).toMatchObject({ watch_streams: '4', watch_channels: '3', store_subscriptions: '3' });
    for (const stream of streams) stream.cancel();
    await eventually(async () =>
      expect(await client.status()).toMatchObject({ watchStreams: 0, watchChannels: 0, storeSubscriptions: 0 }),
    );
  });
});
