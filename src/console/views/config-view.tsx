import type { ConfigModel, LiveState } from '../config-model.js';
import { versionOf } from '../format.js';
import type { WriteResponse } from '../types.js';
import { ChainStatus } from './chain-status.js';
import { CompareSection } from './compare-section.js';
import { EditSection } from './edit-section.js';
import { PageHeading } from './heading.js';
import { HistorySection } from './history-section.js';
import { InstancesSection } from './instances-section.js';
import { RollbackDialog } from './rollback-dialog.js';
import { ValuesTree } from './values-tree.js';

/** "Live" while the watch stream is open, "Reconnecting…" while it is retried, "Not live" once refused. */
function LiveIndicator({ live }: { readonly live: LiveState }) {
  const text = live.kind === 'live' ? 'Live' : live.kind === 'reconnecting' ? 'Reconnecting…' : 'Not live';
  return (
    <span
      role="status"
      aria-label="Live"
      class={`live live-${live.kind}`}
      title={live.kind === 'refused' ? `Changes are not followed: ${live.message}` : undefined}
    >
      {text}
    </span>
  );
}

/** Props of ConfigView. */
export interface ConfigViewProps {
  readonly user: string;
  readonly config: string;
  readonly model: ConfigModel;
  readonly canRead: boolean;
  readonly canWrite: boolean;
  readonly rollbackTo: number | undefined;
  readonly onApplied: (response: WriteResponse) => void;
  readonly onLoadOlder: () => Promise<void>;
  readonly onRollback: (version: number | undefined) => void;
}

/**
 * A loaded config: its status line (version, live stream, hash chain), values, editor, history,
 * comparison of versions and fleet, and the rollback dialog when one is open.
 */
export function ConfigView(props: ConfigViewProps) {
  const { user, config, model } = props;
  const { current } = model;
  const oldest = model.entries[model.entries.length - 1];
  const hasOlder = oldest !== undefined && versionOf(oldest.version) > Math.max(1, model.firstKept);
  return (
    <>
      <PageHeading title={`${user}/${config}`} />
      <div class="config-status">
        <output aria-label="Current version" class="current-version">
          Version {current.version}
        </output>
        <LiveIndicator live={model.live} />
        <ChainStatus user={user} config={config} version={current.version} />
      </div>
      <div class="columns">
        <div class="column">
          <section aria-labelledby="values-heading">
            <h2 id="values-heading">Values</h2>
            {current.values !== undefined ? (
              <ValuesTree values={current.values} />
            ) : current.deleted ? (
              <p>Deleted at version {current.version}. Its history stays readable; a rollback restores it.</p>
            ) : (
              <p>No values yet: version {current.version} set a schema.</p>
            )}
          </section>
          {props.canWrite && <EditSection user={user} config={config} current={current} onSaved={props.onApplied} />}
        </div>
        <div class="column">
          <HistorySection
            entries={model.entries}
            fresh={model.fresh}
            currentVersion={current.version}
            hasOlder={hasOlder}
            canWrite={props.canWrite}
            onLoadOlder={props.onLoadOlder}
            onRollback={props.onRollback}
          />
          <CompareSection user={user} config={config} entries={model.entries} />
        </div>
      </div>
      {props.canRead ? (
        <InstancesSection user={user} config={config} version={current.version} />
      ) : (
        <section aria-labelledby="instances-heading">
          <h2 id="instances-heading">Instances</h2>
          <p class="muted">Fleet convergence needs the read grant on this config.</p>
        </section>
      )}
      {props.rollbackTo !== undefined && (
        <RollbackDialog
          user={user}
          config={config}
          toVersion={props.rollbackTo}
          currentVersion={current.version}
          onDone={props.onApplied}
          onClose={() => props.onRollback(undefined)}
        />
      )}
    </>
  );
}
