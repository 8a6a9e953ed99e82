import { useEffect, useReducer, useState } from 'preact/hooks';
import { type ApiError, configPath, isAbort, messageOf } from '../api.js';
import { currentOf, loadCurrent, loadHistory } from '../config-data.js';
import { reduceConfig } from '../config-model.js';
import { versionOf } from '../format.js';
import { may, useSession } from '../session.js';
import { followStream } from '../sse.js';
import type { WatchResponse, WriteResponse } from '../types.js';
import { ConfigView } from './config-view.js';
import { PageHeading } from './heading.js';

/** How many versions of history the page loads at first, and at each Load older. */
const HISTORY_PAGE = 100;

type Status = 'loading' | 'ready' | 'missing' | { readonly error: unknown };

/**
 * `#/users/{u}/configs/{c}`: a config's current values, history, comparison of versions, hash
 * chain, editor (for principals who may write) and fleet, followed live with a watch stream from
 * the version loaded.
 */
export function ConfigPage({ user, config }: { readonly user: string; readonly config: string }) {
  const session = useSession();
  const { api } = session;
  const [model, dispatch] = useReducer(reduceConfig, undefined);
  const [status, setStatus] = useState<Status>('loading');
  const [rollbackTo, setRollbackTo] = useState<number>();
  const canWrite = may(session, 'write', user, config);
  const canRead = may(session, 'read', user, config);
  const path = configPath(user, config);

  useEffect(() => {
    const controller = new AbortController();
    const signal = controller.signal;
    let close = (): void => undefined;

    const reload = async (): Promise<number | undefined> => {
      const current = await loadCurrent(api, user, config, signal);
      if (current === undefined) return undefined;
      const slice = await loadHistory(api, user, config, current.version, HISTORY_PAGE, signal);
      dispatch({ type: 'loaded', current, entries: slice.entries, firstKept: slice.firstKept });
      return current.version;
    };

    const onMessage = (message: WatchResponse): void => {
      const { config: version, audit_entry: entry } = message;
      if (version === undefined || entry === undefined) return;
      if (message.type === 'WATCH_EVENT_TYPE_RESYNC') {
        // Versions were pruned while the stream was away, or the store was restored from an older
        // backup (a lower version): start again from the current state.
        loadHistory(api, user, config, versionOf(version.version), HISTORY_PAGE, signal).then(
          (slice) =>
            dispatch({
              type: 'loaded',
              current: currentOf(version),
              entries: slice.entries,
              firstKept: slice.firstKept,
            }),
          () => undefined,
        );
        return;
      }
      dispatch({ type: 'version', config: version, entry });
    };

    reload().then(
      (version) => {
        if (signal.aborted) return;
        if (version === undefined) {
          setStatus('missing');
          return;
        }
        setStatus('ready');
        close = followStream(
          api,
          { path: `${path}:watch`, query: { start_version: version } },
          {
            onLive: (live) => dispatch({ type: 'live', live: { kind: live ? 'live' : 'reconnecting' } }),
            onMessage: (data) => onMessage(data as WatchResponse),
            onFailure: (error) => dispatch({ type: 'live', live: { kind: 'refused', message: error.message } }),
          },
        );
      },
      (error: unknown) => !signal.aborted && !isAbort(error) && setStatus({ error }),
    );
    return () => {
      controller.abort();
      close();
    };
  }, [api, user, config, path]);

  const applied = (response: WriteResponse): void => {
    if (response.changed && response.config !== undefined && response.audit_entry !== undefined) {
      dispatch({ type: 'version', config: response.config, entry: response.audit_entry });
    }
  };

  const title = `${user}/${config}`;
  if (status === 'missing') {
    return (
      <>
        <PageHeading title={title} />
        <p class="empty">No such config</p>
        <p class="muted">
          {user} has no config named {config}.
        </p>
      </>
    );
  }
  if (typeof status === 'object') {
    const denied = (status.error as ApiError).status === 403;
    return (
      <>
        <PageHeading title={title} />
        <p role="alert" class="error">
          {denied ? `You may not read this config: ${messageOf(status.error)}` : messageOf(status.error)}
        </p>
      </>
    );
  }
  if (model === undefined) {
    return (
      <>
        <PageHeading title={title} />
        <p role="status">Loading…</p>
      </>
    );
  }
  return (
    <ConfigView
      user={user}
      config={config}
      model={model}
      canRead={canRead}
      canWrite={canWrite}
      onApplied={applied}
      onLoadOlder={async () => {
        const oldest = model.entries[model.entries.length - 1];
        const upTo = (oldest === undefined ? model.current.version + 1 : versionOf(oldest.version)) - 1;
        const slice = await loadHistory(api, user, config, upTo, HISTORY_PAGE);
        dispatch({ type: 'older', entries: slice.entries, firstKept: slice.firstKept });
      }}
      rollbackTo={rollbackTo}
      onRollback={setRollbackTo}
    />
  );
}
