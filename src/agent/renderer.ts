/**
 * How the agent turns a config's values into the bytes of its file: one of
 * the server's file formats (src/render, the same text RenderConfig serves),
 * or a Handlebars template. Pure: text in, text out; the caller reads the
 * template file.
 */
import { createHash } from 'node:crypto';
import Handlebars from 'handlebars';
import { renderValues, type RenderFormat } from '../render/render.js';

/** The config a rendering is of, as a template sees it under `config`. */
export interface RenderedConfig {
  readonly userId: string;
  readonly configName: string;
  readonly version: number;
  readonly updateTime: Date | undefined;
}

/** The values of a config: a JSON object (what `renderValues` takes). */
export type ConfigValues = Parameters<typeof renderValues>[0];

/** Turns values into file text. */
export interface Renderer {
  /** What the renderer writes, as the file extension and template bytes decide it: see `renderingFingerprint`. */
  readonly fingerprint: string;
  /** The file text; throws `RenderError` when the values cannot be written. */
  render(values: ConfigValues, config: RenderedConfig): string;
}

/** Values that a format or template cannot write; the message is the reason, without the values. */
export class RenderError extends Error {
  override readonly name = 'RenderError';
}

/** A template that does not compile; the message names the file and where. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

/**
 * A digest of everything that decides a file's bytes besides the values: the
 * format or the template's text, and the extension. A file written under
 * another fingerprint is rendered afresh rather than resumed.
 */
export function renderingFingerprint(
  output: { readonly format: RenderFormat } | { readonly template: string },
  extension: string,
): string {
  const what =
    'format' in output
      ? { format: output.format, extension }
      : { template: createHash('sha256').update(output.template).digest('hex'), extension };
  return createHash('sha256').update(JSON.stringify(what)).digest('hex');
}

/** The renderer of one of the server's file formats. */
export function formatRenderer(format: RenderFormat, extension: string): Renderer {
  return {
    fingerprint: renderingFingerprint({ format }, extension),
    render(values) {
      try {
        return renderValues(values, format);
      } catch (error: unknown) {
        throw new RenderError(messageOf(error), { cause: error });
      }
    },
  };
}

/**
 * The renderer of a Handlebars template, compiled strict (a missing variable
 * fails the rendering rather than writing empty text) and without HTML
 * escaping. Its context is `{ values, config: { userId, configName, version,
 * updateTime } }` (`updateTime` as an ISO 8601 string); one helper, `json`,
 * writes a value as JSON (`{{json values.hosts}}`). Throws `TemplateError`
 * when `source` does not parse; `where` names it in messages.
 */
export function templateRenderer(source: string, where: string, extension: string): Renderer {
  const handlebars = Handlebars.create();
  handlebars.registerHelper('json', (value: unknown) => JSON.stringify(value ?? null));
  try {
    // compile() defers parsing to the first call; parse() now, so that a broken template is refused at start.
    handlebars.parse(source);
  } catch (error: unknown) {
    throw new TemplateError(`${where}: ${oneLine(messageOf(error))}`, { cause: error });
  }
  const template = handlebars.compile<TemplateContext>(source, { strict: true, noEscape: true });
  return {
    fingerprint: renderingFingerprint({ template: source }, extension),
    render(values, config) {
      try {
        return template({
          values,
          config: {
            userId: config.userId,
            configName: config.configName,
            version: config.version,
            updateTime: config.updateTime?.toISOString() ?? '',
          },
        });
      } catch (error: unknown) {
        throw new RenderError(`${where}: ${oneLine(messageOf(error))}`, { cause: error });
      }
    },
  };
}

interface TemplateContext {
  readonly values: ConfigValues;
  readonly config: {
    readonly userId: string;
    readonly configName: string;
    readonly version: number;
    readonly updateTime: string;
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Handlebars' parse errors draw the line with a caret below it: one line is enough for a log or a report. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^-*\^$/.test(line))
    .join(' ');
}
