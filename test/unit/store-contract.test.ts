/**
 * The conformance suite's history check (`expectContiguousHistory`) against
 * small in-memory stores: it passes on stores that keep the contract, with a
 * first kept version of 1 or above it (as retention will make it), and fails
 * on each way of breaking it. Without this, a check that can never fail would
 * look the same as one that passes.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEntry, ConfigKey, ConfigVersion, WritePlan } from '../../src/domain/index.js';
import type { CredentialStore } from '../../src/store/credential-store.js';
import type { InstanceStore } from '../../src/store/instance-store.js';
import { FIRST_VERSION, type ConfigStore, type StoreStats, type Unsubscribe } from '../../src/store/store.js';
import { expectContiguousHistory } from '../conformance/store-contract.js';

const key: ConfigKey = { userId: 'u', configName: 'c' };
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function versionOf(version: number): ConfigVersion {
  return {
    key,
    version,
    values: { v: version },
    hasValues: true,
    audit: {
      version,
      createdAt: new Date(version * 1000),
      author: 'tester',
      changes: [],
      operation: 'put',
      schemaVersion: 0,
    },
  };
}

/** How one in-memory store behaves; the defaults keep the contract. */
interface Behaviour {
  /** The versions held. */
  readonly stored: readonly number[];
  /** Where the kept history starts; readers honour it. */
  readonly floor?: number;
  /** What `firstKeptVersion` answers, when it is not the floor. */
  readonly reportedFloor?: number;
  /**
   * `range`: a read returns every stored version in the range (as SQL does);
   * `points`: point reads from the start, up to the first missing one (as the
   * RethinkDB readers do).
   */
  readonly reads?: 'range' | 'points';
  /** Readers start at `after + 1` / `from` whatever the floor (the "from 1" assumption). */
  readonly ignoreFloor?: boolean;
  /** Pages hold one version more than asked for. */
  readonly overfill?: boolean;
}

class MemoryStore implements ConfigStore {
  private readonly stored: Map<number, ConfigVersion>;
  private readonly floor: number;

  constructor(private readonly behaviour: Behaviour) {
    this.stored = new Map(behaviour.stored.map((v) => [v, versionOf(v)]));
    this.floor = behaviour.floor ?? FIRST_VERSION;
  }

  async write(): Promise<WritePlan> {
    throw new Error('not used');
  }

  get credentials(): CredentialStore {
    throw new Error('not used');
  }

  get instances(): InstanceStore {
    throw new Error('not used');
  }

  async latest(): Promise<ConfigVersion | undefined> {
    const max = Math.max(...this.stored.keys());
    return this.stored.get(max);
  }

  async version(_key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    if (!this.behaviour.ignoreFloor && version < this.floor) return undefined;
    return this.stored.get(version);
  }

  async versionsAfter(_key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    return this.read(after + 1, limit);
  }

  async auditEntries(_key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    return this.read(from, limit).map((v) => v.audit);
  }

  async firstKeptVersion(): Promise<number> {
    return this.behaviour.reportedFloor ?? this.floor;
  }

  async listLatest(): Promise<ConfigVersion[]> {
    return [];
  }

  async retention(): Promise<undefined> {
    return undefined;
  }

  async setMaxVersions(): Promise<boolean> {
    return false;
  }

  async prune(): Promise<number> {
    throw new Error('not used');
  }

  async schema(): Promise<undefined> {
    return undefined;
  }

  async schemas(): Promise<[]> {
    return [];
  }

  async subscribe(): Promise<Unsubscribe> {
    return () => {};
  }

  stats(): StoreStats {
    return { subscriptions: 0, changefeeds: 0 };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  private read(start: number, limit: number): ConfigVersion[] {
    const from = this.behaviour.ignoreFloor ? start : Math.max(start, this.floor);
    const take = this.behaviour.overfill ? limit + 1 : limit;
    const result: ConfigVersion[] = [];
    if (this.behaviour.reads === 'points') {
      for (let v = from; result.length < take && this.stored.has(v); v++) result.push(this.stored.get(v)!);
    } else {
      for (const v of [...this.stored.keys()].sort((a, b) => a - b)) {
        if (v >= from && result.length < take) result.push(this.stored.get(v)!);
      }
    }
    return result;
  }
}

describe('the conformance check of contiguous history', () => {
  const keeping: [string, Behaviour][] = [
    ['every version from 1, read by range', { stored: range(1, 20) }],
    ['every version from 1, read by point reads', { stored: range(1, 20), reads: 'points' }],
    ['versions 5..20 with the first kept version 5, read by range', { stored: range(5, 20), floor: 5 }],
    [
      'versions 5..20 with the first kept version 5, read by point reads',
      { stored: range(5, 20), floor: 5, reads: 'points' },
    ],
    ['versions not yet removed below a first kept version of 5', { stored: range(1, 20), floor: 5 }],
    ['a config never written', { stored: [] }],
  ];

  it.each(keeping)('passes on a store keeping the contract: %s', async (_name, behaviour) => {
    const store = new MemoryStore(behaviour);
    const expected = behaviour.stored.length === 0 ? [] : range(behaviour.floor ?? FIRST_VERSION, 20);
    expect(await expectContiguousHistory(store, key)).toEqual(expected);
  });

  const breaking: [string, Behaviour][] = [
    ['a skipped version, read by range', { stored: [...range(1, 2), ...range(4, 20)] }],
    ['a skipped version, read by point reads', { stored: [...range(1, 2), ...range(4, 20)], reads: 'points' }],
    [
      'readers that start at 1 whatever the first kept version (point reads find nothing)',
      {
        stored: range(5, 20),
        floor: 5,
        reads: 'points',
        ignoreFloor: true,
      },
    ],
    [
      'readers that return versions below the first kept version',
      { stored: range(1, 20), floor: 5, ignoreFloor: true },
    ],
    [
      'a first kept version that is not recorded (versions 1..4 removed, 1 reported)',
      {
        stored: range(5, 20),
        floor: 5,
        reportedFloor: 1,
      },
    ],
    ['a first kept version reported above versions still served', { stored: range(1, 20), reportedFloor: 3 }],
    ['pages longer than asked for', { stored: range(1, 20), overfill: true }],
  ];

  it.each(breaking)('fails on a store breaking it: %s', async (_name, behaviour) => {
    await expect(expectContiguousHistory(new MemoryStore(behaviour), key)).rejects.toThrow();
  });
});
