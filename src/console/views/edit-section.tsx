import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, configPath, isAbort, isReason, messageOf } from '../api.js';
import { type Current, loadCurrent } from '../config-data.js';
import { jsonEqual } from '../diff.js';
import { parse, pretty, violationDiagnostics } from '../edit-text.js';
import { versionOf } from '../format.js';
import { useSession } from '../session.js';
import type { JsonObject, WriteResponse } from '../types.js';
import { Changes } from './changes.js';
import { type EditorHandle, JsonEditor } from './json-editor.js';
import { type Check, ValidationStatus } from './validation-status.js';

/** How long the text must rest before it is checked with a dry run. */
const DRY_RUN_DELAY_MS = 300;

/** Props of EditSection. */
export interface EditSectionProps {
  readonly user: string;
  readonly config: string;
  /** The config's latest version, as the page knows it. */
  readonly current: Current;
  /** A write was made: the page shows its version. */
  readonly onSaved: (response: WriteResponse) => void;
}

/** The version the editor's text was loaded from (or last saved as), and that text. */
interface Base {
  readonly version: number;
  readonly text: string;
}

type Alert =
  { readonly kind: 'conflict'; readonly version: number } | { readonly kind: 'error'; readonly message: string };

/**
 * The editor: the current values as JSON, checked as they are typed with a dry run of the Put
 * (validation and a preview of the changes), and saved with a compare-and-set on the version
 * they were loaded from. A version saved elsewhere replaces an unedited text and is announced
 * over an edited one.
 */
export function EditSection({ user, config, current, onSaved }: EditSectionProps) {
  const { api } = useSession();
  const editor = useRef<EditorHandle | undefined>(undefined);
  const [initial] = useState(() => pretty(current.values));
  const [base, setBase] = useState<Base>({ version: current.version, text: initial });
  const [text, setText] = useState(initial);
  const [check, setCheck] = useState<Check>({ state: 'pending' });
  const [saving, setSaving] = useState(false);
  const [alert, setAlert] = useState<Alert>();
  const [elsewhere, setElsewhere] = useState<number>();
  const latest = useRef({ base, text });
  latest.current = { base, text };
  const path = configPath(user, config);

  const load = (version: number, values: JsonObject | undefined): void => {
    const loaded = pretty(values);
    setBase({ version, text: loaded });
    setText(loaded);
    editor.current?.setText(loaded);
    setElsewhere(undefined);
    setAlert(undefined);
  };

  // A newer version: it replaces the text unless the text was edited (then it is announced).
  useEffect(() => {
    const { base: was, text: now } = latest.current;
    if (current.version <= was.version) return;
    if (now === was.text) {
      load(current.version, current.values);
      return;
    }
    const parsed = parse(now);
    if (parsed.ok && current.values !== undefined && jsonEqual(parsed.value, current.values)) {
      // The text is what was saved (this editor's own save, or the same values saved elsewhere).
      setBase({ version: current.version, text: now });
      setElsewhere(undefined);
      return;
    }
    setElsewhere(current.version);
  }, [current.version]);

  // Every text is checked with a dry run once it has rested; JSON syntax is checked here.
  useEffect(() => {
    setCheck({ state: 'pending' });
    const controller = new AbortController();
    const timer = setTimeout(() => {
      const parsed = parse(text);
      if (!parsed.ok) {
        setCheck({ state: 'syntax', message: `JSON syntax error: ${parsed.message}` });
        editor.current?.showDiagnostics([
          { from: parsed.at, to: parsed.at, severity: 'error', message: parsed.message },
        ]);
        return;
      }
      api
        .call<WriteResponse>(path, {
          method: 'PUT',
          query: { validate_only: true, expected_version: base.version },
          body: parsed.value,
          signal: controller.signal,
        })
        .then(
          (response) => {
            setCheck({ state: 'valid', changed: response.changed, changes: response.audit_entry?.changes ?? [] });
            editor.current?.showDiagnostics([]);
          },
          (error: unknown) => {
            if (isAbort(error)) return;
            if (isReason(error, 'VERSION_MISMATCH')) {
              setCheck({ state: 'stale', message: messageOf(error) });
              editor.current?.showDiagnostics([]);
              return;
            }
            const violations = error instanceof ApiError ? error.fieldViolations : [];
            setCheck({ state: 'invalid', message: messageOf(error), violations });
            editor.current?.showDiagnostics(violationDiagnostics(text, violations));
          },
        );
    }, DRY_RUN_DELAY_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, path, text, base.version]);

  const edited = text !== base.text;
  const canSave = !saving && ((check.state === 'valid' && check.changed) || (check.state === 'stale' && edited));

  const save = async (): Promise<void> => {
    const parsed = parse(text);
    if (!canSave || !parsed.ok) return;
    const saved = text;
    setSaving(true);
    setAlert(undefined);
    try {
      const response = await api.call<WriteResponse>(path, {
        method: 'PUT',
        query: { expected_version: base.version },
        body: parsed.value,
      });
      setBase({ version: versionOf(response.config?.version), text: saved });
      setElsewhere(undefined);
      onSaved(response);
    } catch (error: unknown) {
      setAlert(
        isReason(error, 'VERSION_MISMATCH')
          ? { kind: 'conflict', version: versionOf(error.metadata.current_version) }
          : { kind: 'error', message: messageOf(error) },
      );
    } finally {
      setSaving(false);
      editor.current?.focus();
    }
  };

  const loadLatest = async (): Promise<void> => {
    try {
      const latestVersion = await loadCurrent(api, user, config);
      if (latestVersion !== undefined) load(latestVersion.version, latestVersion.values);
    } catch (error: unknown) {
      setAlert({ kind: 'error', message: messageOf(error) });
    }
  };

  return (
    <section aria-labelledby="edit-heading" class="edit">
      <h2 id="edit-heading">Edit</h2>
      <p class="muted">
        Each change is checked as you type. Save writes a new version, unless someone else saved one since the values
        were loaded.
      </p>
      {alert?.kind === 'conflict' && (
        <div role="alert" class="error">
          <p>Someone else saved version {alert.version} first. Your edit was not saved.</p>
          <button type="button" onClick={() => void loadLatest()}>
            Load version {alert.version}
          </button>
        </div>
      )}
      {alert?.kind === 'error' && (
        <p role="alert" class="error">
          {alert.message}
        </p>
      )}
      {alert === undefined && elsewhere !== undefined && (
        <p role="alert" class="note">
          Version {elsewhere} was saved elsewhere while you edit.
        </p>
      )}
      <JsonEditor initial={initial} onChange={setText} handle={editor} />
      <div class="edit-results">
        <div>
          <h3>Check</h3>
          <ValidationStatus check={check} />
        </div>
        <div>
          <h3>What saving changes</h3>
          <div role="region" aria-label="Preview" class="preview">
            {check.state === 'valid' &&
              (check.changed ? <Changes changes={check.changes} /> : <p class="muted">No changes</p>)}
          </div>
        </div>
      </div>
      <button type="button" class="primary" disabled={!canSave} onClick={() => void save()}>
        Save
      </button>
    </section>
  );
}
