// The editor's text: values written as JSON, JSON read back, and the server's field violations
// placed in the text.
import type { Diagnostic } from '@codemirror/lint';
import { type FieldViolation, messageOf } from './api.js';
import { locate, valuesPath } from './json-locate.js';
import type { Json, JsonObject } from './types.js';

/** Values as the editor shows them: 2-space JSON. */
export function pretty(values: JsonObject | undefined): string {
  return JSON.stringify(values ?? {}, null, 2);
}

/** A text parsed as JSON, or where and why it is not JSON. */
export type Parsed =
  { readonly ok: true; readonly value: Json } | { readonly ok: false; readonly message: string; readonly at: number };

/** Parses the editor's text; a syntax error's position is read from the parser's message. */
export function parse(text: string): Parsed {
  try {
    return { ok: true, value: JSON.parse(text) as Json };
  } catch (error: unknown) {
    const message = messageOf(error);
    const position = /position (\d+)/.exec(message)?.[1];
    const at = position !== undefined ? Number(position) : /end of/i.test(message) ? text.length : 0;
    return { ok: false, message, at: Math.min(at, text.length) };
  }
}

/** The server's field violations placed in the text, where their paths can be found. */
export function violationDiagnostics(text: string, violations: readonly FieldViolation[]): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const violation of violations) {
    const path = valuesPath(violation.field);
    const range = path === undefined ? undefined : locate(text, path);
    if (range === undefined) continue;
    diagnostics.push({
      from: range.from,
      to: range.to,
      severity: 'error',
      message: `${violation.field}: ${violation.description}`,
    });
  }
  return diagnostics;
}
