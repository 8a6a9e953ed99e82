/**
 * The agent's state file: for each config, the version its file holds, the
 * file's path and digest, and the fingerprint of the rendering settings it
 * was written with. A restarted agent reads it to know which files on disk
 * are its last-known-good ones and where to resume each watch.
 */
import { writeFileAtomic, readFileIfExists } from './files.js';

/** The layout of the file; a file of another layout is not read. */
export const STATE_LAYOUT = 1;

/** What the state file says of one config. */
export interface ConfigRecord {
  /** The last version handled: the file holds its rendering (or, for a deletion, the one before). */
  readonly version: number;
  /** The absolute path of the file. */
  readonly file: string;
  /** The SHA-256 (hex) of the file's bytes as the agent wrote them. */
  readonly sha256: string;
  /** `Renderer.fingerprint` of the settings the file was rendered with. */
  readonly fingerprint: string;
}

/** The whole state: whose configs, and each one's record by config name. */
export interface AgentState {
  readonly userId: string;
  readonly configs: ReadonlyMap<string, ConfigRecord>;
}

/** A state file that cannot be read as one: the message says why. */
export class StateFileError extends Error {
  override readonly name = 'StateFileError';
}

/** The state in `text`; throws `StateFileError` for anything that is not a state file of this layout. */
export function parseState(text: string): AgentState {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error: unknown) {
    throw new StateFileError(`not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isObject(document)) throw new StateFileError('not a JSON object');
  if (document.layout !== STATE_LAYOUT) {
    throw new StateFileError(`layout ${JSON.stringify(document.layout)}, expected ${STATE_LAYOUT}`);
  }
  if (typeof document.userId !== 'string' || document.userId === '') throw new StateFileError('no userId');
  if (!isObject(document.configs)) throw new StateFileError('no configs object');
  const configs = new Map<string, ConfigRecord>();
  for (const [name, record] of Object.entries(document.configs)) {
    if (
      !isObject(record) ||
      !Number.isSafeInteger(record.version) ||
      (record.version as number) < 1 ||
      typeof record.file !== 'string' ||
      record.file === '' ||
      typeof record.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(record.sha256) ||
      typeof record.fingerprint !== 'string'
    ) {
      throw new StateFileError(`the record of config ${JSON.stringify(name)} is malformed`);
    }
    configs.set(name, {
      version: record.version as number,
      file: record.file,
      sha256: record.sha256,
      fingerprint: record.fingerprint,
    });
  }
  return { userId: document.userId, configs };
}

/** The text of a state file holding `state`, configs by name. */
export function serializeState(state: AgentState): string {
  const configs = [...state.configs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${JSON.stringify({ layout: STATE_LAYOUT, userId: state.userId, configs: Object.fromEntries(configs) }, null, 2)}\n`;
}

/** The state in the file at `path`; undefined when there is none. Throws `StateFileError` when it is unreadable. */
export async function readState(path: string): Promise<AgentState | undefined> {
  const bytes = await readFileIfExists(path);
  return bytes === null ? undefined : parseState(bytes.toString('utf8'));
}

/** Writes `state` to `path` atomically. */
export async function writeState(path: string, state: AgentState): Promise<void> {
  await writeFileAtomic(path, serializeState(state));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
