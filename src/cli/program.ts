import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { CreateTokenResponse, Token } from '../../generated/cfgd/v1/auth_service.js';
import { AuditEntry, Config, WatchResponse } from '../../generated/cfgd/v1/config_service.js';
import { CfgdClient, CfgdClientError, WatchEventType, type CfgdClientOptions } from '../client/index.js';
import { ListInstancesResponse } from '../../generated/cfgd/v1/fleet_service.js';
import {
  changeSummary,
  convergenceTable,
  historyTable,
  operationName,
  render,
  table,
  valuesDiff,
  type Output,
} from './format.js';
import { registerAgentCommand } from './agent-command.js';

/** Where the CLI reads and writes: the process's streams, or a test's. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean | undefined };
  readonly stderr: { write(text: string): unknown };
  readonly stdin: AsyncIterable<Buffer | string>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile?: (path: string) => Promise<string>;
  /** Runs the server with these arguments (`cfgd serve …`). */
  readonly serve?: (args: string[]) => Promise<void>;
}

/** Exit code of a mistake in the command line or its input (sysexits EX_USAGE); a failed call exits with its gRPC code. */
export const EXIT_USAGE = 64;

/** A mistake in the command line or its input: exits with EX_USAGE. */
class UsageError extends Error {}

/** `status --check` found instances behind or failing: exits 1, the table having said which. */
class NotConverged extends Error {}

/**
 * The `cfgd` command line: runs `argv` (without the node and script paths)
 * and resolves with the exit code: 0, the gRPC status code of a failed call
 * (NOT_FOUND 5, ABORTED 10 …) with the error on one line of stderr, or
 * EX_USAGE (64) for a mistake in the command line.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // The server's flags are its own (some share a name with the client's: --tls-cert …): handed on untouched.
  if (argv[0] === 'serve' && io.serve !== undefined) {
    await io.serve(argv.slice(1));
    return 0;
  }
  let client: CfgdClient | undefined;
  const connect = async (options: GlobalOptions): Promise<CfgdClient> =>
    (client ??= new CfgdClient(await clientOptions(options, io)));
  const program = buildProgram(io, connect);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error: unknown) {
    if (error instanceof CommanderError) {
      // Help and version are answers, not failures; commander has printed what it had to say.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      if (error.code === 'commander.help') return 0;
      return EXIT_USAGE;
    }
    if (error instanceof NotConverged) return 1;
    if (error instanceof UsageError) {
      io.stderr.write(`cfgd: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof CfgdClientError) {
      io.stderr.write(`cfgd: ${error.describe()}\n`);
      return error.code;
    }
    io.stderr.write(`cfgd: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

interface GlobalOptions {
  readonly addr: string;
  readonly token?: string;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly deadlineMs: string;
  readonly output: Output;
}

function buildProgram(io: CliIo, connect: (options: GlobalOptions) => Promise<CfgdClient>): Command {
  const program = new Command('cfgd')
    .description('cfgd: versioned, audited configuration. Commands talk to a cfgd server over gRPC.')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .addOption(
      new Option('--addr <host:port,...>', "cfgd's gRPC address; several, comma-separated, for failover")
        .env('CFGD_ADDR')
        .default('127.0.0.1:50051'),
    )
    .addOption(new Option('--token <token>', 'bearer token (or JWT)').env('CFGD_TOKEN'))
    .addOption(new Option('--tls-ca <file>', 'PEM CA that signed the server certificate: use TLS').env('CFGD_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'PEM client certificate (mTLS)').env('CFGD_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM key of --tls-cert').env('CFGD_TLS_KEY'))
    .addOption(
      new Option('--deadline-ms <ms>', 'deadline of each call attempt').env('CFGD_DEADLINE_MS').default('10000'),
    )
    .addOption(
      new Option('-o, --output <format>', 'text (for people), json or yaml')
        .choices(['text', 'json', 'yaml'])
        .default('text'),
    );
  const global = (): GlobalOptions => program.opts<GlobalOptions>();
  const reader = io.readFile ?? ((path: string) => readFile(path, 'utf8'));

  program
    .command('get')
    .description('print the values of a config (or of one of its versions)')
    .argument('<user/config>', 'the config')
    .option('--version <n>', 'an earlier version')
    .option('--full', 'the whole config: version, update time, schema version, values')
    .action(async (target: string, options: { version?: string; full?: boolean }) => {
      const client = await connect(global());
      const { config } = await client.get(configKey(target), integer('--version', options.version ?? '0'));
      io.stdout.write(
        render(
          options.full === true && config !== undefined ? Config.toJSON(config) : (config?.values ?? {}),
          global().output,
        ),
      );
    });

  program
    .command('put')
    .description('replace the values of a config: JSON or YAML, as an argument, from a file (-f FILE) or stdin (-f -)')
    .argument('<user/config>', 'the config')
    .argument('[values]', 'the values, JSON or YAML')
    .option('-f, --file <file>', 'read the values from a file, - for stdin')
    .option('--expected-version <n>', 'write only if the config is at this version (0: only if it has no values)')
    .action(async (target: string, text: string | undefined, options: { file?: string; expectedVersion?: string }) => {
      const values = await readObject(text, options.file, io, reader);
      const client = await connect(global());
      const response = await client.put({
        ...configKey(target),
        values,
        expectedVersion: optionalInteger('--expected-version', options.expectedVersion),
      });
      io.stdout.write(writeResult(response.config?.version, response.changed, global().output));
    });

  program
    .command('patch')
    .description('merge a JSON Merge Patch (null removes a key) into the values of a config')
    .argument('<user/config>', 'the config')
    .argument('[patch]', 'the patch, JSON or YAML')
    .option('-f, --file <file>', 'read the patch from a file, - for stdin')
    .option('--expected-version <n>', 'patch only if the config is at this version')
    .action(async (target: string, text: string | undefined, options: { file?: string; expectedVersion?: string }) => {
      const patch = await readObject(text, options.file, io, reader);
      const client = await connect(global());
      const response = await client.patch({
        ...configKey(target),
        patch,
        expectedVersion: optionalInteger('--expected-version', options.expectedVersion),
      });
      io.stdout.write(writeResult(response.config?.version, response.changed, global().output));
    });

  program
    .command('history')
    .description('the audit trail of a config: who changed what, when')
    .argument('<user/config>', 'the config')
    .option('--from <version>', 'the first version to show', '0')
    .action(async (target: string, options: { from: string }) => {
      const client = await connect(global());
      const entries = [];
      for await (const entry of client.history(configKey(target), integer('--from', options.from))) entries.push(entry);
      const output = global().output;
      io.stdout.write(
        output === 'text'
          ? historyTable(entries)
          : render(
              entries.map((e) => AuditEntry.toJSON(e)),
              output,
            ),
      );
    });

  program
    .command('diff')
    .description('what changed between two versions of a config (coloured on a terminal)')
    .argument('<user/config>', 'the config')
    .argument('<from>', 'a version')
    .argument('[to]', 'a later version (default: the latest)')
    .option('--color <when>', 'always, never or auto', 'auto')
    .action(async (target: string, from: string, to: string | undefined, options: { color: string }) => {
      const client = await connect(global());
      const key = configKey(target);
      const [before, after] = await Promise.all([
        client.get(key, integer('<from>', from)),
        client.get(key, integer('<to>', to ?? '0')),
      ]);
      const colour = options.color === 'always' || (options.color === 'auto' && io.stdout.isTTY === true);
      io.stdout.write(valuesDiff(before.config?.values ?? {}, after.config?.values ?? {}, colour));
    });

  program
    .command('watch')
    .description('follow a config (user/config) or every config of a user (user): one line per change')
    .argument('<target>', 'user/config, or user')
    .option('--start-version <n>', 'config watch: start after this version (default: with the current one)')
    .option('--events', 'print every event as one JSON line, instead of one readable line per change')
    .option('--count <n>', 'stop after this many changes')
    .action(async (target: string, options: { startVersion?: string; events?: boolean; count?: string }) => {
      const client = await connect(global());
      const [userId, configName] = target.split('/', 2) as [string, string | undefined];
      const limit = optionalInteger('--count', options.count);
      const stop = new AbortController();
      let seen = 0;
      for await (const event of client.watch(
        { userId, configName },
        { startVersion: optionalInteger('--start-version', options.startVersion), signal: stop.signal },
      )) {
        if (options.events === true) {
          io.stdout.write(`${JSON.stringify(WatchResponse.toJSON(event))}\n`);
        } else if (event.type === WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE) {
          continue;
        } else {
          const config = event.config;
          const audit = event.auditEntry;
          // A RESYNC is a state to reload from, not a change from the line before it (see the Watch docs).
          const what =
            event.type === WatchEventType.WATCH_EVENT_TYPE_RESYNC
              ? 'RESYNC (the current state: reload from it)'
              : `${audit === undefined ? '' : operationName(audit.operation)} ${changeSummary(audit?.changes ?? [])}`;
          io.stdout.write(
            `${config?.configName ?? ''} v${config?.version ?? audit?.version ?? '?'} ${audit?.createTime?.toISOString() ?? ''} ` +
              `${audit?.author ?? ''} ${what}`.trimEnd() +
              '\n',
          );
        }
        if (
          event.type !== WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE &&
          limit !== undefined &&
          ++seen >= limit
        )
          stop.abort();
      }
    });

  program
    .command('rollback')
    .description('restore the values a config had at a version (a new version)')
    .argument('<user/config>', 'the config')
    .argument('<version>', 'the version to restore')
    .action(async (target: string, version: string) => {
      const client = await connect(global());
      const response = await client.rollback({ ...configKey(target), toVersion: integer('<version>', version) });
      io.stdout.write(writeResult(response.config?.version, true, global().output));
    });

  program
    .command('delete')
    .description('delete a config (a version without values; history and undelete stay possible)')
    .argument('<user/config>', 'the config')
    .action(async (target: string) => {
      const client = await connect(global());
      const response = await client.delete(configKey(target));
      io.stdout.write(writeResult(response.config?.version, true, global().output));
    });

  program
    .command('list')
    .description('the configs of a user')
    .argument('<user>', 'the owner')
    .option('--prefix <prefix>', 'only names starting with it')
    .option('--deleted', 'include deleted configs')
    .action(async (userId: string, options: { prefix?: string; deleted?: boolean }) => {
      const client = await connect(global());
      const configs = [];
      for await (const config of client.list(userId, {
        namePrefix: options.prefix ?? '',
        showDeleted: options.deleted === true,
      }))
        configs.push(config);
      const output = global().output;
      if (output !== 'text') {
        io.stdout.write(
          render(
            configs.map((c) => Config.toJSON(c)),
            output,
          ),
        );
        return;
      }
      io.stdout.write(
        table([
          ['NAME', 'VERSION', 'UPDATED', 'DELETED'],
          ...configs.map((c) => [
            c.configName,
            String(c.version),
            c.updateTime?.toISOString() ?? '',
            c.deleted ? 'yes' : '',
          ]),
        ]),
      );
    });

  program
    .command('status')
    .description('fleet convergence: which instances run which version of a config, and which failed')
    .argument('<user/config>', 'the config')
    .option('--check', 'exit 1 unless every instance runs the latest version')
    .action(async (target: string, options: { check?: boolean }) => {
      const client = await connect(global());
      const response = await client.listInstances(configKey(target));
      const output = global().output;
      io.stdout.write(
        output === 'text'
          ? convergenceTable(response, new Date())
          : render(ListInstancesResponse.toJSON(response), output),
      );
      if (options.check === true && response.converged !== response.instances.length) throw new NotConverged();
    });

  const token = program.command('token').description('tokens (admin)');
  token
    .command('create')
    .description('create a token; prints its secret once')
    .argument('<name>', 'a name for it (the audit trail shows token:<name>)')
    .option('--grant <verb:resource...>', 'a grant, e.g. read:users/alice/configs/*; repeat for more')
    .option('--ttl <seconds>', 'expires after this many seconds')
    .action(async (name: string, options: { grant?: string[]; ttl?: string }) => {
      const grants = (options.grant ?? []).map((grant) => {
        const colon = grant.indexOf(':');
        if (colon <= 0) throw new UsageError(`--grant must be verb:resource, got "${grant}"`);
        return { verb: grant.slice(0, colon), resource: grant.slice(colon + 1) };
      });
      const ttl = optionalInteger('--ttl', options.ttl);
      const client = await connect(global());
      const response = await client.createToken({
        name,
        grants,
        ...(ttl === undefined ? {} : { ttl: { seconds: ttl } }),
      });
      const output = global().output;
      io.stdout.write(
        output === 'text' ? `${response.secret}\n` : render(CreateTokenResponse.toJSON(response), output),
      );
    });
  token
    .command('list')
    .description('every token (never their secrets)')
    .action(async () => {
      const client = await connect(global());
      const { tokens } = await client.listTokens();
      const output = global().output;
      if (output !== 'text') {
        io.stdout.write(
          render(
            tokens.map((t) => Token.toJSON(t)),
            output,
          ),
        );
        return;
      }
      io.stdout.write(
        table([
          ['ID', 'NAME', 'EXPIRES', 'REVOKED', 'GRANTS'],
          ...tokens.map((t) => [
            t.id,
            t.name,
            t.expireTime?.toISOString() ?? '',
            t.revokeTime === undefined ? '' : 'yes',
            t.grants.map((g) => `${g.verb}:${g.resource}`).join(' '),
          ]),
        ]),
      );
    });
  token
    .command('revoke')
    .description('revoke a token at once, on every node')
    .argument('<id>', 'the token id (token list)')
    .action(async (id: string) => {
      const client = await connect(global());
      await client.revokeToken(id);
      io.stdout.write(`revoked ${id}\n`);
    });

  const schema = program.command('schema').description('the JSON Schema of a config');
  schema
    .command('get')
    .description('print the schema of a config')
    .argument('<user/config>', 'the config')
    .action(async (target: string) => {
      const client = await connect(global());
      const response = await client.getSchema(configKey(target));
      io.stdout.write(render(response.schema?.schema ?? {}, global().output));
    });
  schema
    .command('set')
    .description('set the schema of a config: JSON or YAML, as an argument, from a file (-f FILE) or stdin (-f -)')
    .argument('<user/config>', 'the config')
    .argument('[schema]', 'the schema, JSON or YAML')
    .option('-f, --file <file>', 'read the schema from a file, - for stdin')
    .action(async (target: string, text: string | undefined, options: { file?: string }) => {
      const document = await readObject(text, options.file, io, reader);
      const client = await connect(global());
      const response = await client.setSchema({ ...configKey(target), schema: document });
      io.stdout.write(`schema version ${response.schema?.schemaVersion ?? '?'}\n`);
    });

  registerAgentCommand(program, {
    stdout: io.stdout,
    env: io.env,
    clientOptions: () => clientOptions(global(), io),
    usageError: (message) => new UsageError(message),
  });

  program
    .command('serve')
    .description('run the cfgd server (its flags: cfgd serve --help)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[flags...]', 'server flags, e.g. --store ./data --auth off')
    .action(() => {
      // `cfgd serve …` is handed to the server before the command line is parsed (see runCli).
      throw new UsageError('serve is not available here');
    });

  return program;
}

async function clientOptions(options: GlobalOptions, io: CliIo): Promise<CfgdClientOptions> {
  const read = io.readFile ?? ((path: string) => readFile(path, 'utf8'));
  const file = async (path: string | undefined): Promise<Buffer | undefined> =>
    path === undefined ? undefined : Buffer.from(await read(path));
  const tls =
    options.tlsCa === undefined && options.tlsCert === undefined
      ? undefined
      : { ca: await file(options.tlsCa), cert: await file(options.tlsCert), key: await file(options.tlsKey) };
  return {
    addresses: options.addr
      .split(',')
      .map((address) => address.trim())
      .filter((address) => address !== ''),
    token: options.token,
    tls,
    deadlineMs: integer('--deadline-ms', options.deadlineMs),
  };
}

/** `user/config` as a config key. */
function configKey(target: string): { userId: string; configName: string } {
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1 || target.indexOf('/', slash + 1) !== -1) {
    throw new UsageError(`a config is named user/config, got "${target}"`);
  }
  return { userId: target.slice(0, slash), configName: target.slice(slash + 1) };
}

function integer(name: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${name} must be a whole number, got "${text}"`);
  return Number(text);
}

function optionalInteger(name: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : integer(name, text);
}

/** A JSON object from an argument, a file or stdin; YAML is read too (JSON is YAML). */
async function readObject(
  text: string | undefined,
  file: string | undefined,
  io: CliIo,
  read: (path: string) => Promise<string>,
): Promise<Record<string, unknown>> {
  if ((text === undefined) === (file === undefined)) {
    throw new UsageError('give the document as an argument or with -f FILE (- for stdin), not both');
  }
  let source: string;
  let where: string;
  if (file === '-') {
    const chunks: string[] = [];
    for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    source = chunks.join('');
    where = 'stdin';
  } else if (file !== undefined) {
    source = await read(file);
    where = file;
  } else {
    source = text!;
    where = 'the argument';
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(source);
  } catch (error: unknown) {
    throw new UsageError(
      `${where} is neither JSON nor YAML: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${where} must hold an object (key: value pairs)`);
  }
  return parsed as Record<string, unknown>;
}

function writeResult(version: number | undefined, changed: boolean, output: Output): string {
  if (output !== 'text') return render({ version, changed }, output);
  return changed ? `version ${version ?? '?'}\n` : `unchanged at version ${version ?? '?'}\n`;
}
