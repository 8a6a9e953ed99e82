import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/index.js';
import { checkChain } from '../helpers/chain.js';
import { TestClient } from '../helpers/client.js';
import { spawnCfgd } from '../helpers/process.js';
import { startTestServer } from '../helpers/server.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * 16 clients × 50 Puts on one config: every Put creates a version, versions 1..800 are each
 * acknowledged once, and the history is a whole, consistent chain.
 */
async function sixteenTimesFifty(clients: readonly TestClient[]): Promise<void> {
  const key = { userId: 'load', configName: 'shared' };
  const acknowledged: number[] = [];
  await Promise.all(
    clients.map(async (client, c) => {
      for (let j = 0; j < 50; j++) {
        // Each writer keeps its own key and touches a shared one, so entries mix added and updated.
        const res = await client.put({ ...key, values: { [`c${c}`]: j, last: `${c}:${j}` } });
        expect(res.changed).toBe(true);
        acknowledged.push(res.config!.version);
      }
    }),
  );
  expect([...acknowledged].sort((a, b) => a - b)).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
  const values = await checkChain(clients[0]!, key);
  expect(values).toHaveLength(800);
}

describe('embedded store through the gRPC server', () => {
  it('16 concurrent clients x 50 Puts on one config make versions 1..800, contiguous and consistent', async () => {
    const server = await startTestServer({}, 'full');
    try {
      await sixteenTimesFifty(Array.from({ length: 16 }, () => server.client()));
    } finally {
      await server.stop();
    }
  });

  it.each([2, 3])(
    '16 concurrent clients x 50 Puts on one config through %i worker processes make versions 1..800',
    async (workers) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'cfgd-workers-'));
      dirs.push(dataDir);
      const server = await spawnCfgd(['--store', dataDir, '--sync', 'full', '--workers', String(workers)]);
      // Own connections, so that node:cluster spreads them over the workers.
      const clients = Array.from({ length: 16 }, () => new TestClient(server.grpcPort, { ownConnection: true }));
      try {
        await sixteenTimesFifty(clients);
        // GetStatus answers for every worker.
        const status = await clients[0]!.status();
        expect(status.workers.map((w) => w.worker)).toEqual(Array.from({ length: workers }, (_, i) => i + 1));
      } finally {
        for (const client of clients) client.close();
        server.child.kill('SIGTERM');
        expect((await server.exited).code).toBe(0);
      }
    },
  );

  it.each([1, 2])(
    'a process killed with SIGKILL while clients write loses no acknowledged version (--workers %i)',
    async (workers) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'cfgd-kill-'));
      dirs.push(dataDir);
      const first = await spawnCfgd(['--store', dataDir, '--sync', 'full', '--workers', String(workers)]);
      const keys = Array.from({ length: 4 }, (_, i) => ({ userId: 'kill', configName: `cfg-${i}` }));
      const acked = new Map<string, Map<number, JsonObject>>(keys.map((k) => [k.configName, new Map()]));
      const clients = keys.map(() => new TestClient(first.grpcPort, { ownConnection: true }));
      let total = 0;
      let stop = false;
      const writers = keys.flatMap((key, k) =>
        [0, 1].map(async (w) => {
          for (let j = 0; !stop; j++) {
            const values = { writer: w, j, [`w${w}`]: j };
            try {
              const res = await clients[k]!.put({ ...key, values });
              acked.get(key.configName)!.set(res.config!.version, values);
              total++;
            } catch {
              return; // The server is gone.
            }
          }
        }),
      );
      while (total < 300) await new Promise((resolve) => setTimeout(resolve, 5));
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      stop = true;
      await Promise.all(writers);
      for (const client of clients) client.close();

      const second = await spawnCfgd(['--store', dataDir]);
      const client = new TestClient(second.grpcPort);
      try {
        for (const key of keys) {
          const stored = await checkChain(client, key);
          const mine = acked.get(key.configName)!;
          expect(mine.size).toBeGreaterThan(0);
          for (const [version, values] of mine) {
            expect(stored.length).toBeGreaterThanOrEqual(version);
            expect(stored[version - 1]).toEqual(values);
          }
        }
      } finally {
        client.close();
        second.child.kill('SIGTERM');
        expect((await second.exited).code).toBe(0);
      }
    },
  );
});
