import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CfgdProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Resolves with the exit code or signal once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly logs: Record<string, unknown>[];
}

/**
 * Starts `src/main.ts` as a separate process, as `npm start` would, and waits
 * until it listens; with authentication off unless `env` (CFGD_AUTH) or the
 * arguments (--auth) turn it on.
 */
export async function spawnCfgd(args: string[], env: Record<string, string> = {}): Promise<CfgdProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, CFGD_LOG_LEVEL: 'info', CFGD_AUTH: 'off', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const logs: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout });
  const [grpcPort, httpPort] = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cfgd did not start in time: ${stderr}`)), 30_000);
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'cfgd listening') {
          clearTimeout(timer);
          resolve([Number(String(entry.grpc).split(':').at(-1)), Number(String(entry.http).split(':').at(-1))]);
        }
      } catch {
        // Not a log line.
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`cfgd exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return { child, grpcPort, httpPort, exited, logs };
}

/** What a finished run of the `cfgd` command printed, and how it exited. */
export interface CommandRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the `cfgd` command (`src/cli.ts`, as `npx cfgd` runs its build) with
 * `args` to its end, `stdin` piped in and `env` over this process's
 * environment; killed after 30 s.
 */
export function runCfgdCommand(
  args: readonly string[],
  options: { stdin?: string | undefined; env?: Record<string, string | undefined> } = {},
): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}
