/**
 * Vitest global setup of the integration tests: the RethinkDB they run against.
 * With RETHINKDB_URL set (rethinkdb://host:port) that server is used; otherwise
 * reqlite, a RethinkDB-compatible server from npm, is started on a free
 * loopback port and stopped afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { accepts, freePort } from './net.js';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    rethinkdbUrl: string;
  }
}

/** reqlite listens on 28015 + offset. */
const BASE_PORT = 28015;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.RETHINKDB_URL;
  if (given !== undefined && given !== '') {
    project.provide('rethinkdbUrl', given.replace(/\/+$/, ''));
    return async () => {};
  }
  const { child, port } = await startReqlite();
  project.provide('rethinkdbUrl', `rethinkdb://127.0.0.1:${port}`);
  return async () => {
    child.kill('SIGTERM');
  };
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
