import type { ComponentChildren } from 'preact';
import type { FieldViolation } from '../api.js';
import type { Change } from '../types.js';

/** What the last check of the text found. */
export type Check =
  | { readonly state: 'pending' }
  | { readonly state: 'syntax'; readonly message: string }
  | { readonly state: 'valid'; readonly changed: boolean; readonly changes: readonly Change[] }
  | { readonly state: 'invalid'; readonly message: string; readonly violations: readonly FieldViolation[] }
  /** A newer version exists: the dry run could not compare with the version edited. */
  | { readonly state: 'stale'; readonly message: string };

/**
 * The outcome of the last check, as a status: "Valid", or each field violation the server named
 * (`field: description`), or why the text could not be checked.
 */
export function ValidationStatus({ check }: { readonly check: Check }) {
  let body: ComponentChildren;
  switch (check.state) {
    case 'pending':
      body = 'Checking…';
      break;
    case 'valid':
      body = 'Valid';
      break;
    case 'syntax':
    case 'stale':
      body = check.message;
      break;
    case 'invalid':
      body =
        check.violations.length === 0 ? (
          check.message
        ) : (
          <ul>
            {check.violations.map((violation, index) => (
              <li key={index}>
                {violation.field}: {violation.description}
              </li>
            ))}
          </ul>
        );
      break;
  }
  return (
    <div role="status" aria-label="Validation" class={`validation validation-${check.state}`}>
      {body}
    </div>
  );
}
