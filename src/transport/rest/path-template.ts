/**
 * google.api.http path templates, as grpc-gateway reads them:
 *
 *   Template = "/" Segments [ Verb ] ;
 *   Segments = Segment { "/" Segment } ;
 *   Segment  = "*" | "**" | LITERAL | Variable ;
 *   Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *   Verb     = ":" LITERAL ;
 *
 * `{name}` is `{name=*}`: one path segment. `**` matches the rest of the path.
 */

type Part =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'any' }
  | { readonly kind: 'rest' }
  | { readonly kind: 'variable'; readonly field: string; readonly parts: readonly Part[] };

export interface PathTemplate {
  readonly source: string;
  readonly parts: readonly Part[];
  readonly verb: string | undefined;
  /** The field paths bound by variables, in order. */
  readonly fields: readonly string[];
}

export class TemplateError extends Error {
  override name = 'TemplateError';
}

export function parseTemplate(source: string): PathTemplate {
  if (!source.startsWith('/')) throw new TemplateError(`path template must start with "/": ${source}`);
  let body = source.slice(1);
  let verb: string | undefined;
  // The verb is a ':' after the last '/' that is not inside a variable.
  const lastSlash = body.lastIndexOf('/');
  const colon = body.indexOf(':', lastSlash + 1);
  if (colon !== -1 && !body.slice(colon).includes('}')) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
  }
  const fields: string[] = [];
  const parts = parseSegments(splitTopLevel(body, source), source, fields, false);
  return { source, parts, verb, fields };
}

function splitTopLevel(body: string, source: string): string[] {
  const segments: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of body) {
    if (char === '{') depth++;
    if (char === '}') depth--;
    if (depth < 0 || depth > 1) throw new TemplateError(`unbalanced braces in ${source}`);
    if (char === '/' && depth === 0) {
      segments.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  if (depth !== 0) throw new TemplateError(`unbalanced braces in ${source}`);
  segments.push(current);
  return segments;
}

function parseSegments(segments: string[], source: string, fields: string[], inVariable: boolean): Part[] {
  return segments.map((segment, i): Part => {
    if (segment === '') throw new TemplateError(`empty segment in ${source}`);
    if (segment === '*') return { kind: 'any' };
    if (segment === '**') {
      if (i !== segments.length - 1) throw new TemplateError(`"**" must be the last segment in ${source}`);
      return { kind: 'rest' };
    }
    if (segment.startsWith('{')) {
      if (inVariable || !segment.endsWith('}')) throw new TemplateError(`bad variable ${segment} in ${source}`);
      const inner = segment.slice(1, -1);
      const eq = inner.indexOf('=');
      const field = eq === -1 ? inner : inner.slice(0, eq);
      if (!/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$/i.test(field)) {
        throw new TemplateError(`bad field path "${field}" in ${source}`);
      }
      fields.push(field);
      const pattern = eq === -1 ? ['*'] : inner.slice(eq + 1).split('/');
      return { kind: 'variable', field, parts: parseSegments(pattern, source, fields, true) };
    }
    if (/[{}*]/.test(segment)) throw new TemplateError(`bad segment ${segment} in ${source}`);
    return { kind: 'literal', value: segment };
  });
}

/**
 * Matches a request path (percent-encoded, without query) against a template.
 * Returns the variables' values by field path (decoded), or undefined.
 */
export function matchTemplate(template: PathTemplate, path: string): Record<string, string> | undefined {
  if (!path.startsWith('/')) return undefined;
  let body = path.slice(1);
  if (template.verb !== undefined) {
    const suffix = `:${template.verb}`;
    if (!body.endsWith(suffix)) return undefined;
    body = body.slice(0, -suffix.length);
  } else {
    // A ':' in the last segment would be a verb this template does not have.
    const last = body.slice(body.lastIndexOf('/') + 1);
    if (last.includes(':')) return undefined;
  }
  const segments = body.split('/');
  const values: Record<string, string> = {};
  const end = matchParts(template.parts, segments, 0, values);
  return end === segments.length ? values : undefined;
}

/** Matches `parts` from `segments[at]`; returns the index after the match, or -1. */
function matchParts(parts: readonly Part[], segments: string[], at: number, values: Record<string, string>): number {
  let i = at;
  for (const part of parts) {
    switch (part.kind) {
      case 'literal':
        if (segments[i] !== part.value) return -1;
        i++;
        break;
      case 'any':
        if (segments[i] === undefined || segments[i] === '') return -1;
        i++;
        break;
      case 'rest':
        if (i >= segments.length) return -1;
        i = segments.length;
        break;
      case 'variable': {
        const end = matchParts(part.parts, segments, i, values);
        if (end === -1) return -1;
        let value: string;
        try {
          value = segments.slice(i, end).map(decodeURIComponent).join('/');
        } catch {
          return -1;
        }
        values[part.field] = value;
        i = end;
        break;
      }
    }
  }
  return i;
}

/**
 * A template of literal segments only, which may end in `/` (an empty last
 * segment, which google.api.http templates cannot spell): for the routes the
 * REST server serves besides the API, such as the console's `/ui/`.
 */
export function literalTemplate(path: string): PathTemplate {
  if (!path.startsWith('/') || /[{}*:]/.test(path)) throw new TemplateError(`not a literal path: ${path}`);
  const parts: Part[] = path
    .slice(1)
    .split('/')
    .map((value) => ({ kind: 'literal', value }));
  return { source: path, parts, verb: undefined, fields: [] };
}
