import { useEffect, useState } from 'preact/hooks';
import { messageOf } from '../api.js';
import { operationName, versionOf } from '../format.js';
import type { AuditEntry } from '../types.js';
import { Changes } from './changes.js';
import { Time } from './time.js';

/** How long a version that arrived live stays highlighted. */
const FRESH_MS = 5000;

/** Props of HistorySection. */
export interface HistorySectionProps {
  /** Newest first. */
  readonly entries: readonly AuditEntry[];
  readonly fresh: ReadonlySet<number>;
  readonly currentVersion: number;
  /** Whether older versions than those loaded may exist. */
  readonly hasOlder: boolean;
  /** Whether the principal may write (and so roll back). */
  readonly canWrite: boolean;
  readonly onLoadOlder: () => Promise<void>;
  readonly onRollback: (version: number) => void;
}

function Item({
  entry,
  fresh,
  rollback,
}: {
  readonly entry: AuditEntry;
  readonly fresh: boolean;
  readonly rollback: (() => void) | undefined;
}) {
  const version = versionOf(entry.version);
  const [highlight, setHighlight] = useState(fresh);
  useEffect(() => {
    if (!fresh) return undefined;
    setHighlight(true);
    const timer = setTimeout(() => setHighlight(false), FRESH_MS);
    return () => clearTimeout(timer);
  }, [fresh]);
  const operation = operationName(entry.operation);
  const target = versionOf(entry.rollback_to_version);
  return (
    <li class={highlight ? 'entry fresh' : 'entry'} data-new={highlight ? 'true' : undefined}>
      <div class="entry-head">
        <strong>Version {version}</strong> <span class={`op op-${operation.toLowerCase()}`}>{operation}</span>
        {target > 0 && <span class="muted"> to version {target}</span>}
        {operation === 'SET_SCHEMA' && <span class="muted"> schema version {entry.schema_version}</span>}
        {' · '}
        <span class="author">{entry.author}</span>
        {' · '}
        <Time iso={entry.create_time} />
      </div>
      <Changes changes={entry.changes} />
      {rollback !== undefined && (
        <button type="button" class="small" onClick={rollback}>
          Roll back to version {version}
        </button>
      )}
    </li>
  );
}

/**
 * The history, newest first: each version's operation, author, time and changes, with Roll back
 * on those the principal may restore, and Load older for versions before those loaded.
 */
export function HistorySection(props: HistorySectionProps) {
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string>();
  const loadOlder = (): void => {
    if (loading) return;
    setLoading(true);
    setError(undefined);
    props.onLoadOlder().then(
      () => setLoading(false),
      (failure: unknown) => {
        setLoading(false);
        setError(messageOf(failure));
      },
    );
  };
  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      <ol aria-label="History" class="history">
        {props.entries.map((entry) => {
          const version = versionOf(entry.version);
          const restorable =
            props.canWrite && version !== props.currentVersion && entry.operation !== 'OPERATION_DELETE';
          return (
            <Item
              key={version}
              entry={entry}
              fresh={props.fresh.has(version)}
              rollback={restorable ? () => props.onRollback(version) : undefined}
            />
          );
        })}
      </ol>
      {props.hasOlder && (
        <button type="button" onClick={loadOlder} aria-disabled={loading}>
          {loading ? 'Loading older…' : 'Load older'}
        </button>
      )}
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </section>
  );
}
