/**
 * Real RethinkDB servers for tests: started from the binary named by
 * RETHINKDB_BIN (the RethinkDB 2.4.4 build in ../shared/rethinkdb/ on the CI
 * machine), one or several joined in a cluster, and stopped, killed, frozen
 * or restarted by the tests that need a server to fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, freePort } from './net.js';

export interface RethinkdbServerOptions {
  /** The binary; defaults to RETHINKDB_BIN. */
  readonly bin?: string;
  readonly name: string;
  /** The cluster port of a server to join. */
  readonly join?: number;
}

/** The binary named by RETHINKDB_BIN, checked to run; throws with what to do when it is missing. */
export function rethinkdbBinary(): string {
  const bin = process.env.RETHINKDB_BIN;
  if (bin === undefined || bin === '') {
    throw new Error('RETHINKDB_BIN is not set: point it at a RethinkDB 2.4 binary (../shared/rethinkdb/bin/rethinkdb)');
  }
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) {
    throw new Error(`${bin} does not run (${version.stderr.trim()}); apt-get install -y libre2-9 libprotobuf32`);
  }
  return bin;
}

/** One real RethinkDB server process on loopback. */
/** Two distinct loopback ports that were free a moment ago: driver and cluster. */
async function freePorts(): Promise<{ driver: number; cluster: number }> {
  const driver = await freePort();
  let cluster = await freePort();
  while (cluster === driver) cluster = await freePort();
  return { driver, cluster };
}

export class RethinkdbServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    private readonly bin: string,
    readonly name: string,
    readonly dir: string,
    private ports: { driver: number; cluster: number },
    private readonly joinPort: number | undefined,
  ) {}

  /** Starts a server with a fresh data directory; resolves once it accepts driver connections. */
  static async start(options: RethinkdbServerOptions): Promise<RethinkdbServer> {
    const bin = options.bin ?? rethinkdbBinary();
    const dir = mkdtempSync(join(tmpdir(), `cfgd-rethinkdb-${options.name}-`));
    const server = new RethinkdbServer(bin, options.name, join(dir, 'data'), await freePorts(), options.join);
    for (let attempt = 1; ; attempt++) {
      try {
        await server.launch();
        return server;
      } catch (error: unknown) {
        // A port that was free when chosen can be taken before the server binds it: choose again.
        if (attempt === 3 || !/Address already in use/.test(String(error))) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
        server.ports = await freePorts();
      }
    }
  }

  get port(): number {
    return this.ports.driver;
  }

  get clusterPort(): number {
    return this.ports.cluster;
  }

  get url(): string {
    return `rethinkdb://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process (again, after `kill` or `stop`) on the same directory and ports. */
  async launch(): Promise<void> {
    if (!existsSync(this.dir)) {
      const created = spawnSync(this.bin, ['create', '--directory', this.dir, '--server-name', this.name], {
        encoding: 'utf8',
      });
      if (created.status !== 0) throw new Error(`rethinkdb create failed: ${created.stderr}`);
    }
    const args = [
      'serve',
      '--bind',
      '127.0.0.1',
      '--driver-port',
      String(this.port),
      '--cluster-port',
      String(this.clusterPort),
      '--no-http-admin',
      '--directory',
      this.dir,
      '--log-file',
      join(this.dir, 'log'),
      '--cache-size',
      '256',
      ...(this.joinPort === undefined ? [] : ['--join', `127.0.0.1:${this.joinPort}`]),
    ];
    const child = spawn(this.bin, args, { stdio: 'ignore' });
    this.child = child;
    let gone = false;
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        gone = true;
        resolve();
      }),
    );
    // Up and listening: the port accepts and the process is still there (not another one on the port).
    const up = await Promise.race([accepts(this.port, 30_000), this.exited.then(() => false)]);
    if (!up || gone) {
      child.kill('SIGKILL');
      await this.exited;
      throw new Error(`rethinkdb ${this.name} did not start on port ${this.port}: ${this.logTail()}`);
    }
  }

  /** The last lines of the server's log, for failure messages. */
  private logTail(): string {
    try {
      return readFileSync(join(this.dir, 'log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  /** SIGKILL: the server dies at once, as in a crash; `launch` brings it back with its data. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the server stops answering without closing anything, as a hung machine would. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server (resuming it first if frozen) and removes its data. */
  async stop(): Promise<void> {
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(join(this.dir, '..'), { recursive: true, force: true });
  }
}
