import { describe, expect, it } from 'vitest';
import { matchTemplate, parseTemplate, TemplateError } from '../../src/transport/rest/path-template.js';

describe('path templates', () => {
  it('binds single-segment variables', () => {
    const t = parseTemplate('/v1/users/{user_id}/configs/{config_name}');
    expect(t.fields).toEqual(['user_id', 'config_name']);
    expect(matchTemplate(t, '/v1/users/1/configs/test')).toEqual({ user_id: '1', config_name: 'test' });
    expect(matchTemplate(t, '/v1/users/1/configs/test/history')).toBeUndefined();
    expect(matchTemplate(t, '/v1/users/1/configs')).toBeUndefined();
    expect(matchTemplate(t, '/v1/users//configs/x')).toBeUndefined();
  });

  it('decodes percent-encoded values', () => {
    const t = parseTemplate('/v1/users/{user_id}');
    expect(matchTemplate(t, '/v1/users/a%20b')).toEqual({ user_id: 'a b' });
    expect(matchTemplate(t, '/v1/users/a%2Fb')).toEqual({ user_id: 'a/b' });
    expect(matchTemplate(t, '/v1/users/%E0%A4%A')).toBeUndefined();
  });

  it('matches verbs only where the template has one', () => {
    const watch = parseTemplate('/v1/users/{user_id}/configs/{config_name}:watch');
    const get = parseTemplate('/v1/users/{user_id}/configs/{config_name}');
    expect(watch.verb).toBe('watch');
    expect(matchTemplate(watch, '/v1/users/1/configs/test:watch')).toEqual({ user_id: '1', config_name: 'test' });
    expect(matchTemplate(watch, '/v1/users/1/configs/test')).toBeUndefined();
    expect(matchTemplate(get, '/v1/users/1/configs/test:watch')).toBeUndefined();
    expect(matchTemplate(watch, '/v1/users/1/configs/test:other')).toBeUndefined();
  });

  it('supports nested field paths, explicit patterns, * and **', () => {
    const t = parseTemplate('/v1/{name=users/*/configs/*}/x/*/{rest=**}');
    expect(t.fields).toEqual(['name', 'rest']);
    expect(matchTemplate(t, '/v1/users/1/configs/c/x/any/a/b/c')).toEqual({ name: 'users/1/configs/c', rest: 'a/b/c' });
    expect(matchTemplate(t, '/v1/users/1/other/c/x/any/a')).toBeUndefined();
    expect(parseTemplate('/v1/{config.user_id}').fields).toEqual(['config.user_id']);
  });

  it.each(['v1/x', '/v1/{a', '/v1/**/x', '/v1/{a/b}', '/v1//x', '/v1/{1bad}', '/v1/{a={b}}'])(
    'rejects malformed template %j',
    (source) => {
      expect(() => parseTemplate(source)).toThrow(TemplateError);
    },
  );
});
