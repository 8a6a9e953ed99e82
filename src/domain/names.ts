import { v5 as uuidv5 } from 'uuid';
import { invalidField } from './errors.js';

/** Identifies a config: the pair (user_id, config_name). */
export interface ConfigKey {
  readonly userId: string;
  readonly configName: string;
}

export const MAX_NAME_LENGTH = 128;
const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

/**
 * Throws INVALID_ARGUMENT naming `field` unless `value` is 1-128 characters
 * from `A-Z a-z 0-9 . _ -`.
 */
export function validateName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalidField(field, 'NAME_REQUIRED', 'is required');
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw invalidField(field, 'NAME_TOO_LONG', `must be at most ${MAX_NAME_LENGTH} characters, got ${value.length}`);
  }
  if (!NAME_PATTERN.test(value)) {
    throw invalidField(field, 'NAME_INVALID', 'may contain only the characters A-Z a-z 0-9 . _ -');
  }
  return value;
}

/** Validates both parts of a config's name. */
export function configKey(userId: unknown, configName: unknown): ConfigKey {
  return { userId: validateName('user_id', userId), configName: validateName('config_name', configName) };
}

/** The canonical resource name: `users/{user_id}/configs/{config_name}`. */
export function resourceName(key: ConfigKey): string {
  return `users/${key.userId}/configs/${key.configName}`;
}

/** The legacy display id of the seed API: `{user_id}-{config_name}`. */
export function legacyConfigId(key: ConfigKey): string {
  return `${key.userId}-${key.configName}`;
}

/** cfgd's UUID v5 namespace; never change it, or every config id changes. */
const CONFIG_ID_NAMESPACE = '6f1b8c1e-2f4a-5d53-9c57-0c6d2a1f0e42';

const uuidCache = new Map<string, string>();
const UUID_CACHE_SIZE = 10_000;

/** A UUID that is a pure function of the key, so every node and backend agrees on it. */
export function configUuid(key: ConfigKey): string {
  const name = resourceName(key);
  let id = uuidCache.get(name);
  if (id === undefined) {
    // SHA-1 per response showed in profiles; the function is pure, so a bounded memo is safe.
    if (uuidCache.size >= UUID_CACHE_SIZE) uuidCache.clear();
    id = uuidv5(name, CONFIG_ID_NAMESPACE);
    uuidCache.set(name, id);
  }
  return id;
}
