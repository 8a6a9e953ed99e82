import { useEffect, useRef, useState } from 'preact/hooks';
import { configPath, isAbort, isReason, messageOf } from '../api.js';
import { useSession } from '../session.js';
import type { WriteResponse } from '../types.js';
import { Changes } from './changes.js';

/** Props of RollbackDialog. */
export interface RollbackDialogProps {
  readonly user: string;
  readonly config: string;
  readonly toVersion: number;
  /** The version the rollback is planned against (compare-and-set). */
  readonly currentVersion: number;
  /** The rollback was made. */
  readonly onDone: (response: WriteResponse) => void;
  readonly onClose: () => void;
}

type Plan =
  | { readonly state: 'planning' }
  | { readonly state: 'ready'; readonly response: WriteResponse }
  | { readonly state: 'failed'; readonly message: string };

/**
 * A modal dialog (focus stays in it, Escape closes it) that previews a rollback with a dry run
 * against the current version, then makes it with the same compare-and-set.
 */
export function RollbackDialog(props: RollbackDialogProps) {
  const { api } = useSession();
  const ref = useRef<HTMLDialogElement>(null);
  const [plan, setPlan] = useState<Plan>({ state: 'planning' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const path = `${configPath(props.user, props.config)}:rollback`;
  const body = (validateOnly: boolean): object => ({
    to_version: String(props.toVersion),
    validate_only: validateOnly,
    expected_version: String(props.currentVersion),
  });

  useEffect(() => {
    const dialog = ref.current;
    if (dialog !== null && !dialog.open) dialog.showModal();
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    setPlan({ state: 'planning' });
    api.call<WriteResponse>(path, { method: 'POST', body: body(true), signal: controller.signal }).then(
      (response) => setPlan({ state: 'ready', response }),
      (failure: unknown) => !isAbort(failure) && setPlan({ state: 'failed', message: messageOf(failure) }),
    );
    return () => controller.abort();
  }, [api, path, props.toVersion, props.currentVersion]);

  const rollBack = async (): Promise<void> => {
    if (busy || plan.state !== 'ready') return;
    setBusy(true);
    setError(undefined);
    try {
      const response = await api.call<WriteResponse>(path, { method: 'POST', body: body(false) });
      props.onDone(response);
      ref.current?.close();
    } catch (failure: unknown) {
      setBusy(false);
      setError(
        isReason(failure, 'VERSION_MISMATCH')
          ? `Someone else saved version ${failure.metadata.current_version ?? '?'} first. Nothing was rolled back.`
          : messageOf(failure),
      );
    }
  };

  return (
    <dialog ref={ref} aria-label="Roll back" class="dialog" onClose={props.onClose}>
      <h2>Roll back to version {props.toVersion}</h2>
      <p>A new version will hold the values of version {props.toVersion}. The history is kept.</p>
      <div role="region" aria-label="Rollback preview" class="preview">
        {plan.state === 'planning' && <p role="status">Checking…</p>}
        {plan.state === 'failed' && (
          <p role="alert" class="error">
            {plan.message}
          </p>
        )}
        {plan.state === 'ready' &&
          (plan.response.changed ? (
            <Changes changes={plan.response.audit_entry?.changes ?? []} />
          ) : (
            <p>No changes: the values are those of version {props.toVersion} already.</p>
          ))}
      </div>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <div class="buttons">
        <button
          type="button"
          class="primary"
          disabled={plan.state !== 'ready' || !plan.response.changed || busy}
          onClick={() => void rollBack()}
        >
          Roll back
        </button>
        <button type="button" autofocus onClick={() => ref.current?.close()}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
