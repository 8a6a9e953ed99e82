/**
 * How the agent renders a config: the server's formats byte for byte, a
 * Handlebars template (strict, unescaped, with a `json` helper) and its
 * errors, and the fingerprint that decides whether a file is resumed or
 * rendered afresh.
 */
import { describe, expect, it } from 'vitest';
import {
  formatRenderer,
  RenderError,
  renderingFingerprint,
  templateRenderer,
  TemplateError,
} from '../../src/agent/renderer.js';
import { renderValues } from '../../src/render/render.js';

const config = {
  userId: 'alice',
  configName: 'web',
  version: 4,
  updateTime: new Date('2026-01-02T03:04:05.678Z'),
};

describe('formatRenderer', () => {
  it('writes what RenderConfig serves', () => {
    const values = { port: 8080, name: 'a b', nested: { on: true } };
    for (const format of ['json', 'yaml', 'properties'] as const) {
      expect(formatRenderer(format, format).render(values, config)).toBe(renderValues(values, format));
    }
    expect(formatRenderer('env', 'env').render({ PORT: 8080 }, config)).toBe('PORT=8080\n');
  });

  it('values the format cannot hold are a RenderError naming the key', () => {
    const render = () => formatRenderer('env', 'env').render({ 'not-a-name': 1 }, config);
    expect(render).toThrow(RenderError);
    expect(render).toThrow(/"not-a-name" is not a shell variable name/);
  });
});

describe('templateRenderer', () => {
  it('renders values and the config, without HTML escaping, with a json helper', () => {
    const template = templateRenderer(
      '{{config.userId}}/{{config.configName}} v{{config.version}} at {{config.updateTime}}\n' +
        'title={{values.title}}\n{{#each values.hosts}}host={{this}}\n{{/each}}all={{json values}}\n',
      'app.conf.hbs',
      'conf',
    );
    const values = { title: '<b>&"quoted"</b>', hosts: ['a', 'b'] };
    expect(template.render(values, config)).toBe(
      'alice/web v4 at 2026-01-02T03:04:05.678Z\n' +
        'title=<b>&"quoted"</b>\nhost=a\nhost=b\n' +
        `all=${JSON.stringify(values)}\n`,
    );
  });

  it('a missing value fails the rendering (strict), naming it and the template', () => {
    const template = templateRenderer('port={{values.port}}\n', 'app.conf.hbs', 'conf');
    expect(() => template.render({}, config)).toThrow(RenderError);
    expect(() => template.render({}, config)).toThrow(/^app\.conf\.hbs: "port" not defined/);
    // A value that is there but null renders empty: it is not missing.
    expect(template.render({ port: null }, config)).toBe('port=\n');
  });

  it('a template that does not parse is a TemplateError at once, on one line', () => {
    let error: unknown;
    try {
      templateRenderer('{{#if values.x}}\nunclosed\n', 'broken.hbs', 'txt');
    } catch (e: unknown) {
      error = e;
    }
    expect(error).toBeInstanceOf(TemplateError);
    expect((error as Error).message).toMatch(/^broken\.hbs: Parse error|^broken\.hbs: .*if doesn't match/);
    expect((error as Error).message).not.toContain('\n');
  });

  it('has no helpers but json and the built-in ones', () => {
    const template = templateRenderer('{{lowercase values.a}}', 't.hbs', 'txt');
    expect(() => template.render({ a: 'X' }, config)).toThrow(RenderError);
  });
});

describe('renderingFingerprint', () => {
  it('changes with the format, the template text and the extension, and only with them', () => {
    const json = renderingFingerprint({ format: 'json' }, 'json');
    expect(renderingFingerprint({ format: 'json' }, 'json')).toBe(json);
    expect(renderingFingerprint({ format: 'yaml' }, 'json')).not.toBe(json);
    expect(renderingFingerprint({ format: 'json' }, 'conf')).not.toBe(json);
    const template = renderingFingerprint({ template: 'a={{values.a}}' }, 'conf');
    expect(renderingFingerprint({ template: 'a={{values.a}}' }, 'conf')).toBe(template);
    expect(renderingFingerprint({ template: 'a={{values.a}} ' }, 'conf')).not.toBe(template);
    expect(templateRenderer('a={{values.a}}', 'x.hbs', 'conf').fingerprint).toBe(template);
    expect(formatRenderer('json', 'json').fingerprint).toBe(json);
  });
});
