/**
 * `cfgd agent`: the sidecar that keeps an app's config files (src/agent/)
 * in step with cfgd. It runs until SIGTERM or SIGINT, then exits 0.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { Agent } from '../agent/agent.js';
import { agentLogger } from '../agent/log.js';
import {
  AgentOptionsError,
  DEFAULT_EXEC_TIMEOUT_MS,
  DEFAULT_HEALTH_ADDR,
  DEFAULT_REPORT_INTERVAL_MS,
  DEFAULT_RETRY_MS,
  parseAgentOptions,
  type AgentOptions,
  type RawAgentOptions,
} from '../agent/options.js';
import { formatRenderer, templateRenderer, TemplateError, type Renderer } from '../agent/renderer.js';
import { CfgdClient, type CfgdClientOptions } from '../client/index.js';

/** What the command takes from the `cfgd` program it joins. */
export interface AgentCommandContext {
  readonly stdout: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The client options of the global flags (--addr, --token, TLS, --deadline-ms). */
  clientOptions(): Promise<CfgdClientOptions>;
  /** The error that makes `cfgd` exit 64 (EX_USAGE) with its message on one line. */
  usageError(message: string): Error;
}

/** The watch's reconnection backoff: soon after a restart, and at most every 2 s during an outage. */
export const AGENT_BACKOFF = { initialMs: 100, maxMs: 2000 } as const;

/** Adds `cfgd agent` to `program`. */
export function registerAgentCommand(program: Command, context: AgentCommandContext): void {
  program
    .command('agent')
    .description(
      'write configs to files for an app and reload it when they change; runs until SIGTERM ' +
        '(one config with --config, or every config of the user into --dir)',
    )
    .option('--user <user>', 'the owner of the configs')
    .option('--config <name>', 'the config to follow (default: every config of the user, one file each in --dir)')
    .option('--file <path>', 'the file of --config')
    .option('--dir <dir>', 'the directory of NAME.EXT files')
    .addOption(new Option('--format <format>', 'json (default), yaml, env or properties'))
    .option('--template <file.hbs>', 'a Handlebars template instead of a format (strict: a missing value fails)')
    .option('--extension <ext>', 'the extension of --dir files (default: the format, or the template name before .hbs)')
    .option('--exec <command>', 'after each change, run this through /bin/sh -c (CFGD_VERSION, CFGD_FILE … set)')
    .option('--signal <signal>', 'after each change, send this signal (HUP, USR1 …) to the pid in --pid-file')
    .option('--pid-file <file>', 'the file holding the pid that --signal goes to')
    .option('--exec-timeout-ms <ms>', `longest --exec may run (default ${DEFAULT_EXEC_TIMEOUT_MS})`)
    .option('--instance-id <id>', 'this instance in fleet reports (default: the host name)')
    .option('--state-file <path>', 'what the files hold (default: .cfgd-agent*.json beside them)')
    .option('--health-addr <host:port>', `where GET /healthz answers (default ${DEFAULT_HEALTH_ADDR}; port 0: any)`)
    .option('--report-interval-ms <ms>', `fleet report heartbeat (default ${DEFAULT_REPORT_INTERVAL_MS})`)
    .option(
      '--retry-ms <ms>',
      `first wait before a failed write or reload is tried again, doubling to 5 min (default ${DEFAULT_RETRY_MS}; 0: never)`,
    )
    .action(async (raw: RawAgentOptions) => {
      const options = checked(raw, context);
      const renderer = await rendererOf(options, context);
      const log = agentLogger(context.stdout, context.env.CFGD_LOG_LEVEL);
      const client = new CfgdClient({ ...(await context.clientOptions()), backoff: AGENT_BACKOFF });
      // Listening from the start, so that a SIGTERM while the agent starts also ends in a clean stop.
      let agent: Agent | undefined;
      let stopRequested = false;
      const stop = (): void => {
        stopRequested = true;
        void agent?.stop();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        try {
          agent = await Agent.start({ options, renderer, client, log, env: context.env });
        } catch (error: unknown) {
          client.close();
          const code = (error as NodeJS.ErrnoException | undefined)?.code;
          throw new Error(
            code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES'
              ? `--health-addr ${options.health.host}:${options.health.port}: ${code}`
              : `the agent cannot start: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error },
          );
        }
        if (stopRequested) void agent.stop();
        await agent.done;
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      }
    });
}

function checked(raw: RawAgentOptions, context: AgentCommandContext): AgentOptions {
  try {
    return parseAgentOptions(raw, { hostname: hostname(), cwd: process.cwd() });
  } catch (error: unknown) {
    if (error instanceof AgentOptionsError) throw context.usageError(`agent: ${error.message}`);
    throw error;
  }
}

/** The format's renderer, or the template's, read and parsed now: a broken template is a usage mistake. */
async function rendererOf(options: AgentOptions, context: AgentCommandContext): Promise<Renderer> {
  if (options.output.kind === 'format') return formatRenderer(options.output.format, options.extension);
  const path = options.output.path;
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (error: unknown) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code ?? String(error);
    throw context.usageError(`agent: --template ${path} cannot be read: ${code}`);
  }
  try {
    return templateRenderer(source, path, options.extension);
  } catch (error: unknown) {
    if (error instanceof TemplateError) throw context.usageError(`agent: --template ${error.message}`);
    throw error;
  }
}
