import { useState } from 'preact/hooks';
import { messageOf } from '../api.js';
import { loadValues } from '../config-data.js';
import { type DiffLine, diffJson, formatLine, showValue } from '../diff.js';
import { versionOf } from '../format.js';
import { useSession } from '../session.js';
import type { AuditEntry } from '../types.js';

/** Props of CompareSection. */
export interface CompareSectionProps {
  readonly user: string;
  readonly config: string;
  /** The versions loaded, newest first. */
  readonly entries: readonly AuditEntry[];
}

type Result =
  | { readonly state: 'loading' }
  | { readonly state: 'done'; readonly from: number; readonly to: number; readonly lines: readonly DiffLine[] }
  | { readonly state: 'failed'; readonly message: string };

const CLASS = { '+': 'add', '-': 'del', '~': 'mod' } as const;

function Inline({ lines }: { readonly lines: readonly DiffLine[] }) {
  return (
    <div class="diff-inline">
      {lines.map((line, index) => (
        <div key={index} class={`line ${CLASS[line.op]}`}>
          {formatLine(line)}
        </div>
      ))}
    </div>
  );
}

function SideBySide({ lines, from, to }: { readonly lines: readonly DiffLine[]; from: number; to: number }) {
  return (
    <table class="diff-sides">
      <thead>
        <tr>
          <th scope="col">Version {from}</th>
          <th scope="col">Version {to}</th>
        </tr>
      </thead>
      <tbody>
        {lines.map((line, index) => (
          <tr key={index} class={CLASS[line.op]}>
            <td class={line.op === '+' ? 'line' : 'line del'}>
              {line.op === '+' ? '' : `${line.op} ${line.path}: ${showValue(line.from)}`}
            </td>
            <td class={line.op === '-' ? 'line' : 'line add'}>
              {line.op === '-' ? '' : `${line.op} ${line.path}: ${showValue(line.to)}`}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Compare any two versions: the JSON diff of their values, path by path, inline or side by side.
 * Versions without values (deletions) are not offered.
 */
export function CompareSection({ user, config, entries }: CompareSectionProps) {
  const { api } = useSession();
  const versions = entries
    .filter((entry) => entry.operation !== 'OPERATION_DELETE')
    .map((entry) => versionOf(entry.version));
  const [from, setFrom] = useState<number>();
  const [to, setTo] = useState<number>();
  const [result, setResult] = useState<Result>();
  const [sideBySide, setSideBySide] = useState(false);
  // Until one is chosen: the previous version and the current one.
  const fromVersion = from ?? versions[1] ?? versions[0] ?? 0;
  const toVersion = to ?? versions[0] ?? 0;

  const compare = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (fromVersion === 0 || toVersion === 0) return;
    setResult({ state: 'loading' });
    try {
      const [a, b] = await Promise.all([
        loadValues(api, user, config, fromVersion),
        loadValues(api, user, config, toVersion),
      ]);
      setResult({ state: 'done', from: fromVersion, to: toVersion, lines: diffJson(a ?? {}, b ?? {}) });
    } catch (failure: unknown) {
      setResult({ state: 'failed', message: messageOf(failure) });
    }
  };

  const select = (id: string, label: string, value: number, set: (version: number) => void) => (
    <>
      <label for={id}>{label}</label>
      <select id={id} value={String(value)} onChange={(event) => set(Number(event.currentTarget.value))}>
        {versions.map((version) => (
          <option key={version} value={String(version)}>
            Version {version}
          </option>
        ))}
      </select>
    </>
  );

  return (
    <section aria-labelledby="compare-heading">
      <h2 id="compare-heading">Compare</h2>
      <form aria-label="Compare versions" class="inline-form" onSubmit={(event) => void compare(event)}>
        {select('compare-from', 'From version', fromVersion, setFrom)}
        {select('compare-to', 'To version', toVersion, setTo)}
        <button type="submit" disabled={versions.length === 0}>
          Compare
        </button>
      </form>
      {result !== undefined && (
        <div role="region" aria-label="Diff" class="diff">
          {result.state === 'loading' && <p role="status">Comparing…</p>}
          {result.state === 'failed' && (
            <p role="alert" class="error">
              {result.message}
            </p>
          )}
          {result.state === 'done' && (
            <>
              <div class="diff-head">
                <span>
                  Version {result.from} → Version {result.to}:{' '}
                  {result.lines.length === 1 ? '1 change' : `${result.lines.length} changes`}
                </span>
                <button type="button" class="small" onClick={() => setSideBySide(!sideBySide)}>
                  {sideBySide ? 'Inline' : 'Side by side'}
                </button>
              </div>
              {result.lines.length === 0 ? (
                <p>No differences.</p>
              ) : sideBySide ? (
                <SideBySide lines={result.lines} from={result.from} to={result.to} />
              ) : (
                <Inline lines={result.lines} />
              )}
            </>
          )}
        </div>
      )}
    </section>
  );
}
