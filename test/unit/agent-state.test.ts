/**
 * The agent's state file: what it holds, read back as written, and refused
 * (never half-read) when it is anything else.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  parseState,
  readState,
  serializeState,
  STATE_LAYOUT,
  StateFileError,
  writeState,
  type AgentState,
} from '../../src/agent/state.js';

const dir = mkdtempSync(join(tmpdir(), 'cfgd-agent-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const digest = 'a'.repeat(64);
const state: AgentState = {
  userId: 'alice',
  configs: new Map([
    ['web', { version: 7, file: '/etc/app/web.json', sha256: digest, fingerprint: 'f1' }],
    // A config name that is also an Object.prototype key stays a plain entry.
    ['__proto__', { version: 1, file: '/etc/app/__proto__.json', sha256: digest, fingerprint: 'f1' }],
  ]),
};

describe('the state file', () => {
  it('reads back as it was written, configs sorted by name', () => {
    const text = serializeState(state);
    expect(parseState(text)).toEqual(state);
    const document = JSON.parse(text);
    expect(document.layout).toBe(STATE_LAYOUT);
    expect(Object.keys(document.configs)).toEqual(['__proto__', 'web']);
  });

  it('is written atomically and read from disk; a missing file is no state', async () => {
    const path = join(dir, 'state.json');
    expect(await readState(path)).toBeUndefined();
    await writeState(path, state);
    expect(readFileSync(path, 'utf8')).toBe(serializeState(state));
    expect(await readState(path)).toEqual(state);
  });

  it.each<[string, string, string]>([
    ['not JSON', '{', 'not JSON'],
    ['an array', '[]', 'not a JSON object'],
    ['another layout', '{"layout": 2, "userId": "u", "configs": {}}', 'layout 2, expected 1'],
    ['no user', '{"layout": 1, "configs": {}}', 'no userId'],
    ['no configs', '{"layout": 1, "userId": "u"}', 'no configs object'],
    [
      'a version that is not a whole number',
      `{"layout": 1, "userId": "u", "configs": {"c": {"version": 1.5, "file": "/f", "sha256": "${digest}", "fingerprint": "x"}}}`,
      'the record of config "c" is malformed',
    ],
    [
      'version 0',
      `{"layout": 1, "userId": "u", "configs": {"c": {"version": 0, "file": "/f", "sha256": "${digest}", "fingerprint": "x"}}}`,
      'malformed',
    ],
    [
      'a digest that is not SHA-256 hex',
      '{"layout": 1, "userId": "u", "configs": {"c": {"version": 1, "file": "/f", "sha256": "xyz", "fingerprint": "x"}}}',
      'malformed',
    ],
    [
      'no file',
      `{"layout": 1, "userId": "u", "configs": {"c": {"version": 1, "sha256": "${digest}", "fingerprint": "x"}}}`,
      'malformed',
    ],
  ])('%s is refused', (_, text, message) => {
    expect(() => parseState(text)).toThrow(StateFileError);
    expect(() => parseState(text)).toThrow(message);
  });
});
