#!/usr/bin/env node
/**
 * The `cfgd` command (`npx cfgd …`, `node dist/src/cli.js …`): the client
 * commands of `src/cli/`, and `cfgd serve`, the server of `src/main.ts`.
 */
import { runCli } from './cli/program.js';
import { run as serve } from './main.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  serve,
});
