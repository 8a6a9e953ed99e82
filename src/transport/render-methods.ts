import type { ConfigApp } from '../app/config-app.js';
import { RenderFormat, type RenderConfigRequest } from '../../generated/cfgd/v1/config_service.js';
import type { HttpBody } from '../../generated/google/api/httpbody.js';
import { invalidField } from '../domain/index.js';
import { RENDER_MEDIA_TYPES, renderValues, type RenderFormat as FileFormat } from '../render/render.js';
import type { UnaryMethod } from './methods.js';

/** The RPCs of `cfgd.v1.ConfigService` that answer a file rather than a message. */
export interface RenderMethods {
  readonly RenderConfig: UnaryMethod<RenderConfigRequest, HttpBody>;
}

const FORMATS: ReadonlyMap<number, FileFormat> = new Map([
  [RenderFormat.RENDER_FORMAT_UNSPECIFIED, 'json'],
  [RenderFormat.RENDER_FORMAT_JSON, 'json'],
  [RenderFormat.RENDER_FORMAT_YAML, 'yaml'],
  [RenderFormat.RENDER_FORMAT_ENV, 'env'],
  [RenderFormat.RENDER_FORMAT_PROPERTIES, 'properties'],
]);

/**
 * RenderConfig once, for both transports: Get's read (authorized by the app
 * before it looks anything up), the values rendered by src/render, the file
 * as a `google.api.HttpBody`, which the REST gateway sends as it is.
 */
export function renderMethods(app: ConfigApp): RenderMethods {
  // The version each answer renders: its ETag on REST, as for Get (HttpBody has no field for it).
  const versions = new WeakMap<HttpBody, number>();
  return {
    RenderConfig: {
      kind: 'unary',
      http: { etag: (res) => versions.get(res) },
      async call(req, ctx) {
        // A format this server does not know (a newer client's, over gRPC) is a malformed request, refused
        // before the config is read, as the REST gateway refuses a format name it does not know.
        const format = FORMATS.get(req.format);
        if (format === undefined) {
          throw invalidField(
            'format',
            'FORMAT_INVALID',
            `${req.format} is not a RenderFormat; use RENDER_FORMAT_JSON, _YAML, _ENV or _PROPERTIES`,
          );
        }
        const { config } = await app.get(ctx, {
          userId: req.userId,
          configName: req.configName,
          version: req.version,
        });
        const text = renderValues(config.values, format);
        const body: HttpBody = {
          contentType: RENDER_MEDIA_TYPES[format],
          // Properties files are ISO-8859-1; their escaping keeps them ASCII, so latin1 loses nothing.
          data: Buffer.from(text, format === 'properties' ? 'latin1' : 'utf8'),
          extensions: [],
        };
        versions.set(body, config.version);
        return body;
      },
    },
  };
}
