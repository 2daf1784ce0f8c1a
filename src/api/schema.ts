/**
 * The API's methods are declared once, as data: name, summary, a JSON Schema for params and one for
 * the result. The server validates params against it, `rpc.discover` and GET /openrpc.json serve it
 * as an OpenRPC 1.2 document, and a test checks that document against the handlers.
 *
 * Validation covers the subset of JSON Schema used here: type (object, string, integer, number,
 * boolean, array), properties, required, additionalProperties: false, enum, minLength, maxLength,
 * pattern, minimum, maximum, maxItems, items.
 *
 * Objects are checked by their own properties only: a key is looked up in `properties` with
 * Object.hasOwn, so `__proto__` or `constructor` can never match Object.prototype's members and pass
 * as "declared", and `required` means an own property. Keys that could reach an object's prototype
 * when copied (`__proto__`, `constructor`, `prototype`) are refused whatever the schema says.
 */
export interface JsonSchema {
  type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'null';
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  enum?: readonly (string | number)[];
  minLength?: number;
  maxLength?: number;
  /** A regular expression (unicode mode) the whole string must match; anchor it with ^…$. */
  pattern?: string;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
}

export interface MethodSpec {
  name: string;
  summary: string;
  params: JsonSchema;
  result: JsonSchema;
  /** Only over the WebSocket (subscriptions). */
  wsOnly?: boolean;
  /** Only with the API token (the CLI, scripts), never with a browser session. */
  tokenOnly?: boolean;
}

/** Never accepted as an object key: copying such a key can change an object's prototype. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Returns a list of problems; empty when `value` conforms. */
export function validate(schema: JsonSchema, value: unknown, path = 'params'): string[] {
  const errs: string[] = [];
  if (schema.oneOf) {
    const ok = schema.oneOf.some((s) => validate(s, value, path).length === 0);
    return ok ? [] : [`${path} matches none of the allowed shapes`];
  }
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${path} must be an object`];
      const obj = value as Record<string, unknown>;
      for (const r of schema.required ?? []) if (!Object.hasOwn(obj, r) || obj[r] === undefined) errs.push(`${path}.${r} is required`);
      for (const [k, v] of Object.entries(obj)) {
        if (FORBIDDEN_KEYS.has(k)) {
          errs.push(`${path}.${k} is not allowed`);
          continue;
        }
        const p = schema.properties && Object.hasOwn(schema.properties, k) ? schema.properties[k] : undefined;
        if (p) errs.push(...validate(p, v, `${path}.${k}`));
        else if (schema.additionalProperties === false) errs.push(`${path}.${k} is not allowed`);
        else if (typeof schema.additionalProperties === 'object') errs.push(...validate(schema.additionalProperties, v, `${path}.${k}`));
      }
      return errs;
    }
    case 'string':
      if (typeof value !== 'string') return [`${path} must be a string`];
      if (schema.minLength !== undefined && value.length < schema.minLength) errs.push(`${path} is shorter than ${schema.minLength}`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) errs.push(`${path} is longer than ${schema.maxLength}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) errs.push(`${path} must match ${schema.pattern}`);
      break;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || (schema.type === 'integer' && !Number.isInteger(value))) return [`${path} must be ${schema.type === 'integer' ? 'an integer' : 'a number'}`];
      if (schema.minimum !== undefined && value < schema.minimum) errs.push(`${path} must be ≥ ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) errs.push(`${path} must be ≤ ${schema.maximum}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${path} must be a boolean`];
      break;
    case 'null':
      if (value !== null) return [`${path} must be null`];
      break;
    case 'array':
      if (!Array.isArray(value)) return [`${path} must be an array`];
      if (schema.maxItems !== undefined && value.length > schema.maxItems) return [`${path} has more than ${schema.maxItems} items`];
      if (schema.items) value.forEach((v, i) => errs.push(...validate(schema.items!, v, `${path}[${i}]`)));
      return errs;
    default:
      break;
  }
  if (schema.enum && !schema.enum.includes(value as string | number)) errs.push(`${path} must be one of ${schema.enum.join(', ')}`);
  return errs;
}

/** The OpenRPC 1.2 document for a method table. */
export function openRpcDocument(methods: readonly MethodSpec[], info: { title: string; version: string }): object {
  return {
    openrpc: '1.2.6',
    info: { ...info, description: 'onionpost node local API: JSON-RPC 2.0 over HTTP POST /rpc and WebSocket /ws on 127.0.0.1, authenticated by the token in the data dir.' },
    methods: methods.map((m) => ({
      name: m.name,
      summary: m.summary,
      paramStructure: 'by-name',
      params: Object.entries(m.params.properties ?? {}).map(([name, schema]) => ({ name, required: (m.params.required ?? []).includes(name), schema })),
      result: { name: 'result', schema: m.result },
      ...(m.wsOnly ? { 'x-transport': 'websocket' } : {}),
      ...(m.tokenOnly ? { 'x-auth': 'token' } : {}),
    })),
  };
}
