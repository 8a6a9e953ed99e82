/**
 * Helpers of the agent's end-to-end tests: `cfgd agent` run as a real process
 * (`node --import tsx src/cli.ts agent …`), its JSON log lines, its
 * `/healthz`, and a stop that waits for its exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { within } from './client-library.js';
import { runCfgdCommand, type CommandRun } from './process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What `/healthz` says of one config. */
export interface HealthConfig {
  readonly version: number;
  readonly file: string;
  readonly failedVersion: number;
  readonly error: string;
  readonly deleted?: boolean;
}

/** The body of `/healthz`. */
export interface HealthBody {
  readonly connected: boolean;
  readonly instanceId: string;
  readonly configs: Record<string, HealthConfig>;
  readonly error?: string;
}

/** A running `cfgd agent` process. */
export interface AgentProcess {
  readonly child: ChildProcess;
  /** Every JSON line it logged so far. */
  readonly logs: Record<string, unknown>[];
  /** The port of its `/healthz`. */
  readonly healthPort: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its stderr so far. */
  stderr(): string;
  healthz(): Promise<{ status: number; body: HealthBody }>;
}

/**
 * Starts `cfgd agent args…` (the health listener on a free port unless `args`
 * say otherwise) with `env`, and waits for its "listening" line.
 */
export async function startAgent(args: readonly string[], env: Record<string, string> = {}): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'agent', '--health-addr', '127.0.0.1:0', ...args],
    { cwd: ROOT, env: { ...process.env, CFGD_LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const logs: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout });
  const healthPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start in time: ${stderr}`)), 30_000);
    lines.on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'cfgd agent listening') {
        clearTimeout(timer);
        resolve(Number(String(entry.health).split(':').at(-1)));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the agent exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return {
    child,
    logs,
    healthPort,
    exited,
    stderr: () => stderr,
    async healthz() {
      const response = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
      return { status: response.status, body: (await response.json()) as HealthBody };
    },
  };
}

/** The agent processes of a test file: stopped by a signal and waited for, and all killed by `cleanup`. */
export class Agents {
  private readonly running = new Set<AgentProcess>();

  async start(args: readonly string[], env: Record<string, string> = {}): Promise<AgentProcess> {
    const agent = await startAgent(args, env);
    this.running.add(agent);
    return agent;
  }

  /** Sends `signal` and waits for the exit. */
  async stop(
    agent: AgentProcess,
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    agent.child.kill(signal);
    const exit = await within(agent.exited, 15_000, `the agent ${agent.child.pid} to exit after ${signal}`);
    this.running.delete(agent);
    return exit;
  }

  async cleanup(): Promise<void> {
    for (const agent of this.running) {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
      await within(agent.exited, 10_000, 'an agent to exit').catch(() => {});
    }
    this.running.clear();
  }
}

/** Runs `cfgd agent args…` to its end (a usage mistake): exit code and output. */
export function runAgent(args: readonly string[]): Promise<CommandRun> {
  return runCfgdCommand(['agent', ...args]);
}
