import { showValue } from '../diff.js';
import { changeLabel, changeSign } from '../format.js';
import type { Change } from '../types.js';

const CLASS = { '+': 'add', '~': 'mod', '-': 'del' } as const;

/**
 * An audit entry's key-level changes as `+key`, `~key`, `-key`; each expands to its values
 * (`old → new` for an update).
 */
export function Changes({ changes }: { readonly changes: readonly Change[] }) {
  if (changes.length === 0) return null;
  return (
    <ul class="changes">
      {changes.map((change) => {
        const sign = changeSign(change);
        return (
          <li key={`${sign}${change.key}`} class={CLASS[sign]}>
            <details>
              <summary>
                <code>{changeLabel(change)}</code>
              </summary>
              <code class="change-values">
                {sign === '~' ? (
                  <>
                    <span class="old">{showValue(change.old_value)}</span> →{' '}
                    <span class="new">{showValue(change.value)}</span>
                  </>
                ) : (
                  <span class={sign === '+' ? 'new' : 'old'}>{showValue(change.value)}</span>
                )}
              </code>
            </details>
          </li>
        );
      })}
    </ul>
  );
}
