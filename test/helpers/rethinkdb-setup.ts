/**
 * Vitest global setup of the tests that use RethinkDB: the server they run
 * against. With RETHINKDB_URL set (rethinkdb://host:port) that server is used.
 * Otherwise the `integration` project starts reqlite (a RethinkDB-compatible
 * server from npm) and the `rethinkdb` project (`npm run test:rethinkdb`)
 * starts a real RethinkDB server from RETHINKDB_BIN, each on a free loopback
 * port, stopped at the end. Tests learn whether the server is a real one,
 * for the checks only a real one can answer (duplicate tables show only in
 * its system tables).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import rethinkdb from 'rethinkdb';
import type { TestProject } from 'vitest/node';
import { accepts, freePort } from './net.js';
import { RethinkdbServer } from './rethinkdb-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    rethinkdbUrl: string;
    /** True when the server is RethinkDB itself, not an imitation. */
    rethinkdbReal: boolean;
  }
}

/** reqlite listens on 28015 + offset. */
const BASE_PORT = 28015;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.RETHINKDB_URL;
  let url: string;
  let stop: () => Promise<void>;
  if (given !== undefined && given !== '') {
    url = given.replace(/\/+$/, '');
    stop = async () => {};
  } else if (project.name === 'rethinkdb') {
    const server = await RethinkdbServer.start({ name: 'tests' });
    url = server.url;
    stop = () => server.stop();
  } else {
    const { child, port } = await startReqlite();
    url = `rethinkdb://127.0.0.1:${port}`;
    stop = async () => {
      child.kill('SIGTERM');
    };
  }
  const real = await isRealRethinkdb(url);
  if (project.name === 'rethinkdb' && !real) {
    await stop();
    throw new Error(`npm run test:rethinkdb needs a real RethinkDB server; ${url} is an imitation`);
  }
  project.provide('rethinkdbUrl', url);
  project.provide('rethinkdbReal', real);
  return stop;
}

/** RethinkDB lists its servers in rethinkdb.server_status; reqlite keeps that table empty. */
async function isRealRethinkdb(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const connection = await rethinkdb.connect({ host: hostname, port: Number(port || 28015) });
  try {
    const servers = await rethinkdb.db('rethinkdb').table('server_status').count().run(connection);
    return servers > 0;
  } finally {
    await connection.close();
  }
}

async function startReqlite(): Promise<{ child: ChildProcess; port: number }> {
  const bin = createRequire(import.meta.url).resolve('reqlite/bin/reqlite');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [bin, '--port-offset', String(port - BASE_PORT)], {
      stdio: 'ignore',
    });
    if (await accepts(port, 10_000)) return { child, port };
    child.kill('SIGKILL');
  }
  throw new Error('reqlite did not start');
}
