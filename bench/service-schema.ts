/**
 * The realistic schema of the `put_schema` workload: the config of one deployed service, the kind of
 * object teams keep in cfgd. Every common kind of rule is there: typed fields, integer and number
 * bounds, string lengths, an enum, a `pattern` (run by re2js in cfgd), the formats hostname, uri and
 * email (ajv-formats), nested objects with their own `required` and `additionalProperties: false`,
 * arrays with `items`, `maxItems` and `uniqueItems`, a map of flags; `SCHEMA_RULES` counts them.
 */

export const SERVICE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  required: ['service', 'environment', 'replicas', 'port', 'build', 'image', 'owner', 'endpoint', 'limits'],
  properties: {
    service: { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z][a-z0-9-]*$' },
    environment: { enum: ['dev', 'staging', 'production'] },
    replicas: { type: 'integer', minimum: 1, maximum: 100 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    build: { type: 'integer', minimum: 0 },
    image: { type: 'string', maxLength: 256 },
    host: { type: 'string', format: 'hostname' },
    endpoint: { type: 'string', format: 'uri' },
    owner: { type: 'string', format: 'email' },
    debug: { type: 'boolean' },
    timeout_ms: { type: 'number', exclusiveMinimum: 0, maximum: 60000 },
    log_level: { enum: ['trace', 'debug', 'info', 'warn', 'error'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 32 }, maxItems: 16, uniqueItems: true },
    limits: {
      type: 'object',
      additionalProperties: false,
      required: ['cpu_millis', 'memory_mib'],
      properties: {
        cpu_millis: { type: 'integer', minimum: 10, maximum: 64000 },
        memory_mib: { type: 'integer', minimum: 16, maximum: 262144 },
        burst: { type: 'boolean' },
      },
    },
    retry: {
      type: 'object',
      additionalProperties: false,
      required: ['attempts'],
      properties: {
        attempts: { type: 'integer', minimum: 0, maximum: 10 },
        backoff_ms: { type: 'integer', minimum: 0, maximum: 60000 },
      },
    },
    feature_flags: { type: 'object', additionalProperties: { type: 'boolean' }, maxProperties: 32 },
  },
};

/**
 * The rules of a schema: its keywords, in every subschema, other than `$schema` and the
 * `properties` that only name the subschemas (each of which is counted).
 */
export function countRules(schema: unknown): number {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return 0;
  let rules = 0;
  for (const [keyword, value] of Object.entries(schema as Record<string, unknown>)) {
    if (keyword === '$schema') continue;
    if (keyword === 'properties') {
      for (const property of Object.values(value as Record<string, unknown>)) rules += countRules(property);
      continue;
    }
    rules += 1 + countRules(value);
  }
  return rules;
}

export const SCHEMA_RULES = countRules(SERVICE_SCHEMA);

/**
 * Values that satisfy `SERVICE_SCHEMA`, all of its properties set; only `build` changes with `i`, so
 * every Put creates a version. The config without a schema gets the same shapes.
 */
export function serviceValues(i: number): Record<string, unknown> {
  return {
    service: 'checkout-api',
    environment: 'production',
    replicas: 6,
    port: 8443,
    build: i,
    image: 'registry.example.com/shop/checkout-api:2.14.3',
    host: 'checkout.internal.example.com',
    endpoint: 'https://checkout.example.com/api/v2',
    owner: 'payments-team@example.com',
    debug: false,
    timeout_ms: 2500,
    log_level: 'info',
    tags: ['payments', 'tier-1', 'pci', 'eu'],
    limits: { cpu_millis: 1500, memory_mib: 2048, burst: true },
    retry: { attempts: 3, backoff_ms: 250 },
    feature_flags: { new_checkout: true, apple_pay: true, legacy_cart: false },
  };
}
