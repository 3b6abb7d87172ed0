import { DATABASE_FACTS } from '../drivers/database-facts';
import {
  appliesTo,
  CONNECTION_FIELDS,
  CONNECTION_NAME,
  DATABASE_TYPES,
  fieldNames,
  type FieldSpec,
  MANAGER_FIELDS,
  MAX_DURATION_MS,
  RESERVED_MIKRO_ORM_KEYS,
  snakeCase,
} from './config-schema';
import { formatDuration } from './duration';

/** A JSON Schema (draft-07) node. */
export type JsonSchema = { [keyword: string]: unknown } | boolean;

/** Field docs by camelCase key: the TSDoc of each field in config-schema.ts, read from its source at build time. */
export type FieldDocs = Readonly<Record<string, string>>;

/** A `${VAR}` or `${VAR:-fallback}` reference: any field may hold one, replaced from the environment before it is checked. */
const ENV_REFERENCE = { type: 'string', pattern: String.raw`\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}` };
const ENV = { $ref: '#/definitions/envReference' };
/** Go-style durations (`500ms`, `1h30m`) or a number of ms written as a string, as `parseDuration` reads them. */
const DURATION_STRING = { type: 'string', pattern: String.raw`^\s*(?:\d+|(?:\d+(?:\.\d+)?(?:ms|s|m|h))+)\s*$` };
const DURATION = { $ref: '#/definitions/durationString' };

/**
 * The configuration's JSON Schema, for editors (a `# yaml-language-server: $schema=…` line) and validators. It comes
 * from the same field tables and database facts as the parser, and accepts everything the parser accepts (it cannot
 * check a few things the parser does: that `default_connection` names a connection, that retry_delay ≤
 * retry_max_delay, floors of durations written as strings, DSN contents). snake_case keys are listed (and so
 * suggested); camelCase ones are accepted through exact patterns, so completion offers each setting once.
 */
export function configJsonSchema(docs: FieldDocs = {}): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'nestjs-dbmanager configuration',
    description: 'Named database connections for NestJS (the dbmanager: section, or the file with it as its root).',
    anyOf: [
      { type: 'object', properties: { dbmanager: { $ref: '#/definitions/manager' } }, required: ['dbmanager'], additionalProperties: false },
      { $ref: '#/definitions/manager' },
    ],
    definitions: {
      manager: {
        ...objectOf(fieldNames(MANAGER_FIELDS), 'The manager: retries, the health loop, shutdown, pool defaults for every connection, and the connections.'),
        allOf: oneSpellingEach(fieldNames(MANAGER_FIELDS)),
      },
      connection: connectionSchema(),
      // Each field once, referenced by both its spellings (and by the manager and a connection, for the pool fields).
      ...Object.fromEntries(Object.entries<FieldSpec>({ ...MANAGER_FIELDS, ...CONNECTION_FIELDS }).map(([key, spec]) => [key, valueOf(spec, docs[key])])),
      envReference: ENV_REFERENCE,
      durationString: DURATION_STRING,
    },
  };
}

/**
 * A connection: an if/then chain on `type`, each branch listing only the fields that apply to that type (so an editor
 * completes those alone, and a validator reports only that branch's problems); the last branch, for a `type` that is
 * an `${ENV}` reference (or unknown, which its `type` refuses), takes every field.
 */
function connectionSchema(): Record<string, unknown> {
  const keys = fieldNames(CONNECTION_FIELDS);
  const chain = DATABASE_TYPES.reduceRight<Record<string, unknown>>(
    (otherwise, type) => ({
      if: { properties: { type: { const: type } }, required: ['type'] },
      then: {
        ...objectOf(keys.filter((key) => appliesTo(key, CONNECTION_FIELDS[key], type))),
        // Where it is: required unless a dsn says it.
        anyOf: [requires(DATABASE_FACTS[type].address), requires('dsn')],
      },
      else: otherwise,
    }),
    objectOf(keys),
  );
  return { type: 'object', description: 'One named connection; its type says which fields apply.', allOf: [...oneSpellingEach(keys), chain] };
}

/** An object of the named fields (and no others): snake_case listed, camelCase accepted through exact patterns. */
function objectOf(keys: readonly string[], description?: string): Record<string, unknown> {
  const properties: Record<string, JsonSchema> = {};
  const patternProperties: Record<string, JsonSchema> = {};
  for (const key of keys) {
    const value = { $ref: `#/definitions/${key}` };
    properties[snakeCase(key)] = value;
    if (snakeCase(key) !== key) patternProperties[`^${key}$`] = value;
  }
  const required = keys.includes('type') ? { required: ['type'] } : {};
  return { type: 'object', ...(description ? { description } : {}), properties, patternProperties, additionalProperties: false, ...required };
}

/** Both spellings of one field in one object are refused. */
function oneSpellingEach(keys: readonly string[]): JsonSchema[] {
  return keys.filter((key) => snakeCase(key) !== key).map((key) => ({ not: requires(snakeCase(key), key) }));
}

/** A field's value: its kind's shape, or an `${ENV}` reference; with its doc and default. */
function valueOf(spec: FieldSpec, doc: string | undefined): Record<string, unknown> {
  const described: Record<string, unknown> = {};
  if (doc) described.description = doc;
  if (spec.default !== undefined) described.default = spec.kind === 'duration' && typeof spec.default === 'number' ? formatDuration(spec.default) : spec.default;
  switch (spec.kind) {
    case 'string':
      if (spec.oneOf) return { ...described, anyOf: [{ enum: [...spec.oneOf, ...(spec.aliases ?? [])] }, ENV] };
      return { ...described, type: 'string', ...(spec.nonEmpty ? { minLength: 1 } : {}) };
    case 'int':
      return { ...described, anyOf: [{ type: 'integer', minimum: spec.min, maximum: spec.max }, { type: 'string', pattern: String.raw`^\s*-?\d+\s*$` }, ENV] };
    case 'duration': {
      const floor = spec.floorMs ?? 1;
      const above = { type: 'number', minimum: floor, maximum: MAX_DURATION_MS };
      const milliseconds = (spec.zeroAllowed ?? true) ? { anyOf: [{ const: 0 }, above] } : above;
      return { ...described, anyOf: [milliseconds, DURATION, ENV] };
    }
    case 'bool':
      return { ...described, anyOf: [{ type: 'boolean' }, { enum: ['true', 'false'] }, ENV] };
    case 'tags':
      return { ...described, type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } };
    case 'mikroOrm':
      return { ...described, type: 'object', propertyNames: { not: { enum: [...RESERVED_MIKRO_ORM_KEYS] } } };
    case 'connections':
      return { ...described, type: 'object', propertyNames: { pattern: CONNECTION_NAME.source }, additionalProperties: { $ref: '#/definitions/connection' } };
  }
}

/** Has every one of `keys` (each also named under `properties`, as Ajv's strictest mode wants). */
function requires(...keys: string[]): Record<string, unknown> {
  return { properties: Object.fromEntries(keys.map((key) => [key, true])), required: keys };
}

