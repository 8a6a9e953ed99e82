// Reading one config: its current version and its history, as the config page needs them.
import { type Api, configPath, isReason } from './api.js';
import { versionOf } from './format.js';
import type { AuditEntry, Config, GetResponse, HistoryResponse, JsonObject } from './types.js';

/** A config's latest version as the page shows it. */
export interface Current {
  readonly version: number;
  /** Undefined for a deletion, or a schema set before the first values. */
  readonly values: JsonObject | undefined;
  readonly deleted: boolean;
}

/** The Current of a config message. */
export function currentOf(config: Config): Current {
  return { version: versionOf(config.version), values: config.values, deleted: config.deleted };
}

/**
 * The latest version of a config, or undefined when it does not exist. A deleted config, or one
 * with a schema but no values yet, has a version all the same (from the error's metadata).
 */
export async function loadCurrent(
  api: Api,
  user: string,
  config: string,
  signal?: AbortSignal,
): Promise<Current | undefined> {
  try {
    const response = await api.call<GetResponse>(configPath(user, config), signal && { signal });
    return currentOf(response.config);
  } catch (error: unknown) {
    if (isReason(error, 'CONFIG_DELETED')) {
      return { version: versionOf(error.metadata.deleted_version), values: undefined, deleted: true };
    }
    if (isReason(error, 'CONFIG_NOT_FOUND')) {
      const latest = versionOf(error.metadata.latest_version);
      return latest > 0 ? { version: latest, values: undefined, deleted: false } : undefined;
    }
    throw error;
  }
}

/** The values of one version: undefined for a version without values (a deletion). */
export async function loadValues(
  api: Api,
  user: string,
  config: string,
  version: number,
  signal?: AbortSignal,
): Promise<JsonObject | undefined> {
  try {
    const response = await api.call<GetResponse>(configPath(user, config), {
      query: { version },
      ...(signal && { signal }),
    });
    return response.config.values ?? {};
  } catch (error: unknown) {
    if (isReason(error, 'CONFIG_DELETED')) return undefined;
    throw error;
  }
}

/** A slice of history: its entries newest first, and the oldest version kept. */
export interface HistorySlice {
  readonly entries: AuditEntry[];
  /** The oldest version the server keeps, as far as known: 1 unless it answered that retention pruned older ones. */
  readonly firstKept: number;
}

/**
 * The audit entries of versions `upTo - count + 1` … `upTo` (those kept), newest first. History
 * pages ascend from a start version; a start below what retention kept answers VERSION_PRUNED
 * naming the oldest kept version, where the slice then starts.
 */
export async function loadHistory(
  api: Api,
  user: string,
  config: string,
  upTo: number,
  count: number,
  signal?: AbortSignal,
): Promise<HistorySlice> {
  let start = Math.max(1, upTo - count + 1);
  let firstKept = 1;
  const entries: AuditEntry[] = [];
  let pageToken = '';
  for (;;) {
    let page: HistoryResponse;
    try {
      page = await api.call<HistoryResponse>(`${configPath(user, config)}/history`, {
        query: { start_version: start, page_size: upTo - start + 1, page_token: pageToken || undefined },
        ...(signal && { signal }),
      });
    } catch (error: unknown) {
      if (!isReason(error, 'VERSION_PRUNED') || pageToken !== '') throw error;
      firstKept = versionOf(error.metadata.first_kept_version);
      if (firstKept <= start || firstKept > upTo) return { entries: [], firstKept };
      start = firstKept;
      continue;
    }
    for (const entry of page.entries) if (versionOf(entry.version) <= upTo) entries.push(entry);
    const last = page.entries[page.entries.length - 1];
    if (page.next_page_token === '' || last === undefined || versionOf(last.version) >= upTo) break;
    pageToken = page.next_page_token;
  }
  return { entries: entries.reverse(), firstKept };
}
