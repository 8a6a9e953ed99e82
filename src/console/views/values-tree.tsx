import type { Json } from '../types.js';

/** Objects and arrays above this depth (the values themselves at 0, their keys at 1) start open. */
const OPEN_DEPTH = 2;

function Scalar({ value }: { readonly value: Json }) {
  const kind = value === null ? 'null' : typeof value;
  return <span class={`json-${kind}`}>{JSON.stringify(value)}</span>;
}

function Node({ name, value, depth }: { readonly name: string; readonly value: Json; readonly depth: number }) {
  if (value === null || typeof value !== 'object') {
    return (
      <li>
        <span class="json-key">{name}</span>: <Scalar value={value} />
      </li>
    );
  }
  const entries: [string, Json][] = Array.isArray(value)
    ? value.map((item, index) => [String(index), item])
    : Object.entries(value);
  const size = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return (
    <li>
      <details open={depth < OPEN_DEPTH}>
        <summary>
          <span class="json-key">{name}</span> <span class="muted">{size}</span>
        </summary>
        {entries.length > 0 && (
          <ul>
            {entries.map(([key, item]) => (
              <Node key={key} name={key} value={item} depth={depth + 1} />
            ))}
          </ul>
        )}
      </details>
    </li>
  );
}

/**
 * A JSON object as a tree: each object and array a `<details>` (Enter or Space on its summary
 * opens and closes it), open down to depth 2.
 */
export function ValuesTree({ values }: { readonly values: Json }) {
  return (
    <ul class="tree">
      <Node name="values" value={values} depth={0} />
    </ul>
  );
}
