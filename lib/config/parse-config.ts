import { Logger } from '@nestjs/common';
import { factsOf } from '../drivers/database-facts';
import { type ConfigIssue, DbManagerConfigError } from '../errors';
import { mikroOrm, type MikroOrmMajor } from '../mikro-orm-version';
import { type CheckedFields, checkValue, describe, isProblem } from './check-value';
import type { ConnectionConfig, DbManagerConfig, DefaultOrm } from './config.types';
import { appliesTo, CONNECTION_FIELDS, CONNECTION_NAME, DATABASE_TYPES, fieldNames, type FieldSpec, MANAGER_FIELDS, POOL_FIELDS, RESERVED_MIKRO_ORM_KEYS, snakeCase, typesWith } from './config-schema';
import { didYouMean } from './did-you-mean';
import { parseDsn } from './dsn';
import { readDsnParams, resolveSslMode } from './dsn-params';
import { interpolateEnv, isPlainObject } from './env-interpolation';
import { hideSecrets } from './hidden-secrets';

/** Options for `parseDbManagerConfig`. */
export interface ParseConfigOptions {
  /** Where `${VAR}` placeholders are looked up (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Receives non-fatal remarks (a seed alias used, a field ignored); default: the Nest logger. */
  warn?: (message: string) => void;
}

/** The pool settings a connection inherits from the manager (its fields, or a parsed config's `poolDefaults`). */
type PoolDefaults = CheckedFields<typeof POOL_FIELDS>;
const logger = new Logger('DbManager');

/**
 * Validates and normalises a dbmanager configuration: what sits under `dbmanager:` (an object whose only key is
 * `dbmanager` is unwrapped), snake_case or camelCase, `${ENV}` interpolated, defaults applied, durations in ms.
 * Every problem is collected and thrown as one `DbManagerConfigError` listing each with its path. A configuration
 * this function already returned is returned as it is.
 */
export function parseDbManagerConfig(input: unknown, options: ParseConfigOptions = {}): DbManagerConfig {
  if (isParsedConfig(input)) return input;
  const issues: ConfigIssue[] = [];
  const warn = options.warn ?? ((message: string) => logger.warn(message));
  let root = input;
  if (isPlainObject(root) && Object.keys(root).length === 1 && Object.hasOwn(root, 'dbmanager')) root = root.dbmanager;
  if (!isPlainObject(root)) {
    throw new DbManagerConfigError([{ path: 'dbmanager', message: `must be an object with a "connections" map, got ${describe(root)}` }]);
  }
  const manager = readFields(interpolateEnv(root, options.env ?? process.env, '', issues), MANAGER_FIELDS, '', issues);

  const connections: Record<string, ConnectionConfig> = {};
  const rawConnections = manager.connections ?? {};
  for (const [name, raw] of Object.entries(rawConnections)) {
    const connection = parseConnection(name, raw, manager, issues, warn);
    if (connection) connections[name] = connection;
  }

  const { defaultConnection } = manager;
  if (defaultConnection !== undefined && !Object.hasOwn(rawConnections, defaultConnection)) {
    const hint = didYouMean(defaultConnection, Object.keys(rawConnections));
    issues.push({
      path: 'default_connection',
      message: `names "${defaultConnection}", which is not a configured connection${hint ? ` (did you mean "${hint}"?)` : ''}`,
    });
  }
  const settings = {
    retryAttempts: manager.retryAttempts ?? MANAGER_FIELDS.retryAttempts.default,
    retryDelay: manager.retryDelay ?? MANAGER_FIELDS.retryDelay.default,
    retryMaxDelay: manager.retryMaxDelay ?? MANAGER_FIELDS.retryMaxDelay.default,
    healthCheckInterval: manager.healthCheckInterval ?? MANAGER_FIELDS.healthCheckInterval.default,
    enableAutoReconnect: manager.enableAutoReconnect ?? MANAGER_FIELDS.enableAutoReconnect.default,
    shutdownTimeout: manager.shutdownTimeout ?? MANAGER_FIELDS.shutdownTimeout.default,
  };
  if (settings.retryDelay > settings.retryMaxDelay) {
    issues.push({ path: 'retry_delay', message: `(${settings.retryDelay} ms) is longer than retry_max_delay (${settings.retryMaxDelay} ms)` });
  }
  if (issues.length) throw new DbManagerConfigError(issues);
  const poolDefaults = Object.fromEntries(fieldNames(POOL_FIELDS).flatMap((key) => (manager[key] === undefined ? [] : [[key, manager[key]]])));
  return { defaultConnection, ...settings, poolDefaults, connections };
}

/** Validates one connection against the manager's defaults; pushes issues and returns undefined when it is unusable. */
export function parseConnection(name: string, raw: unknown, manager: PoolDefaults, issues: ConfigIssue[], warn: (m: string) => void): ConnectionConfig | undefined {
  const path = `connections.${name}`;
  if (!CONNECTION_NAME.test(name)) {
    issues.push({
      path,
      message: `connection name ${JSON.stringify(name)} must be 1-63 characters of letters, digits, "_", "." or "-", starting with a letter or digit (it becomes an injection token and a metric label)`,
    });
    return undefined;
  }
  if (!isPlainObject(raw)) {
    issues.push({ path, message: `must be an object with at least a "type", got ${describe(raw)}` });
    return undefined;
  }
  const before = issues.length;
  const fields = readFields(raw, CONNECTION_FIELDS, path, issues);
  const { type } = fields;
  if (type === undefined) {
    if (!Object.hasOwn(fields, 'type') && !issues.some((i) => i.path === `${path}.type`)) {
      issues.push({ path: `${path}.type`, message: `is required: ${DATABASE_TYPES.slice(0, -1).join(', ')} or ${DATABASE_TYPES.at(-1)}` });
    }
    return undefined;
  }
  if (fields.name !== undefined && fields.name !== name) {
    issues.push({ path: `${path}.name`, message: `is "${fields.name}" but must equal the connection's key "${name}" (or be left out)` });
  }
  for (const key of fieldNames(CONNECTION_FIELDS)) {
    if (fields[key] !== undefined && !appliesTo(key, CONNECTION_FIELDS[key], type)) {
      issues.push({ path: `${path}.${snakeCase(key)}`, message: `does not apply to a ${type} connection (only to ${typesWith(key).join(', ')})` });
    }
  }

  let dsnParams: Record<string, string> = {};
  const target = { host: fields.host, port: fields.port, user: fields.user, password: fields.password, database: fields.database, filepath: fields.filepath };
  let fromDsn: Partial<typeof fields> = {};
  if (fields.dsn !== undefined) {
    const parts = parseDsn(type, fields.dsn);
    if (typeof parts === 'string') {
      issues.push({ path: `${path}.dsn`, message: parts });
    } else {
      const addressKeys = ['host', 'port', 'user', 'password', 'database', 'filepath'] as const;
      const overridden = addressKeys.filter((k) => fields[k] !== undefined && parts[k] !== undefined);
      if (overridden.length) warn(`Connection "${name}": dsn overrides ${overridden.join(', ')}`);
      Object.assign(target, Object.fromEntries(addressKeys.flatMap((k) => (parts[k] === undefined ? [] : [[k, parts[k]]]))));
      const read = readDsnParams(type, parts.params, `${path}.dsn`, issues);
      for (const [key, value] of Object.entries(read.fields)) {
        const given = fields[key as keyof typeof fields];
        if (given !== undefined && given !== value) {
          issues.push({ path: `${path}.${snakeCase(key)}`, message: `is ${describe(given)} but the dsn's query says otherwise: say it in one place` });
        }
      }
      fromDsn = read.fields;
      dsnParams = read.rest;
    }
  }
  const sslmode = resolveSslMode(type, fields.sslmode ?? fromDsn.sslmode, dsnParams, `${path}.dsn`, issues);
  const address = factsOf(type).address;
  if (!target[address] && fields.dsn === undefined) {
    const what = address === 'filepath' ? ' (a file path, or ":memory:"), or give a dsn' : ' (or give a dsn)';
    issues.push({ path: `${path}.${address}`, message: `is required for ${type}${what}` });
  }

  const mikroOrm = fields.mikroOrm ?? {};
  for (const key of RESERVED_MIKRO_ORM_KEYS) {
    if (Object.hasOwn(mikroOrm, key)) {
      issues.push({ path: `${path}.mikro_orm.${key}`, message: 'is set by the library from the connection fields; use those fields instead' });
    }
  }
  const defaultOrm = readDefaultOrm(fields.defaultOrm ?? CONNECTION_FIELDS.defaultOrm.default, `${path}.default_orm`, issues, (m) => warn(`Connection "${name}": ${m}`));
  if (issues.length > before) return undefined;

  const pool = Object.fromEntries(fieldNames(POOL_FIELDS).map((key) => [key, fields[key] ?? manager[key] ?? POOL_FIELDS[key].default])) as Required<PoolDefaults>;
  // As Go's database/sql does: more idle connections than open ones cannot exist.
  pool.maxIdleConns = Math.min(pool.maxIdleConns, pool.maxOpenConns);
  const given = { ...fromDsn, ...fields };

  return hideSecrets({
    name,
    type,
    dsn: fields.dsn,
    ...target,
    sslmode,
    schema: given.schema,
    pooler: given.pooler,
    authSource: given.authSource,
    replicaSet: given.replicaSet,
    readPreference: given.readPreference,
    dsnParams,
    ...pool,
    enableTracing: fields.enableTracing ?? CONNECTION_FIELDS.enableTracing.default,
    enableMetrics: fields.enableMetrics ?? CONNECTION_FIELDS.enableMetrics.default,
    enableLogging: fields.enableLogging ?? CONNECTION_FIELDS.enableLogging.default,
    defaultOrm: defaultOrm ?? 'orm',
    tags: fields.tags ?? {},
    critical: fields.critical ?? CONNECTION_FIELDS.critical.default,
    applicationName: given.applicationName ?? name,
    mikroOrm,
    explicit: Object.keys(fields),
  });
}

/**
 * `default_orm` for the running MikroORM major: the Go package's names become ours (`bun` → the running major's query
 * builder, `gorm` → `orm`, with a warning), and the other major's query builder is an issue naming the major.
 */
function readDefaultOrm(value: DefaultOrm | 'bun' | 'gorm', path: string, issues: ConfigIssue[], warn: (m: string) => void): DefaultOrm | undefined {
  const running = runningMikroOrm();
  const builder = running?.major === 6 ? 'knex' : 'kysely';
  if (value === 'bun' || value === 'gorm') {
    const mapped = value === 'bun' ? builder : 'orm';
    warn(`default_orm "${value}" is the Go package's name; using "${mapped}"`);
    return mapped;
  }
  if (running && (value === 'knex' || value === 'kysely') && value !== builder) {
    issues.push({
      path,
      message: `is "${value}", the query builder of MikroORM ${value === 'knex' ? 6 : 7}, but MikroORM ${running.version} runs here: use "${builder}" (or orm, native)`,
    });
    return undefined;
  }
  return value;
}

/** Reads the known fields of one object (either spelling), reporting unknown keys, doubled keys and bad values. */
export function readFields<T extends Readonly<Record<string, FieldSpec>>>(raw: Record<string, unknown>, table: T, path: string, issues: ConfigIssue[]): CheckedFields<T> {
  const out: Record<string, unknown> = {};
  const bySpelling = new Map<string, [key: string, spec: FieldSpec]>();
  for (const [key, spec] of Object.entries<FieldSpec>(table)) {
    bySpelling.set(key, [key, spec]);
    bySpelling.set(snakeCase(key), [key, spec]);
  }
  const seen = new Map<string, string>();
  for (const [spelling, value] of Object.entries(raw)) {
    const fieldPath = path ? `${path}.${spelling}` : spelling;
    const field = bySpelling.get(spelling);
    if (!field) {
      const spellings = [...bySpelling.keys()].filter((k) => (spelling.includes('_') ? !/[A-Z]/.test(k) : !k.includes('_')));
      const hint = didYouMean(spelling, spellings);
      issues.push({ path: fieldPath, message: `is not a known setting${hint ? ` (did you mean "${hint}"?)` : ''}` });
      continue;
    }
    const [key, spec] = field;
    const other = seen.get(key);
    if (other !== undefined) {
      issues.push({ path: fieldPath, message: `is given twice, as "${other}" and "${spelling}": keep one spelling` });
      continue;
    }
    seen.set(key, spelling);
    if (value === undefined || value === null) continue;
    const checked = checkValue(spec, value);
    if (isProblem(checked)) issues.push({ path: fieldPath, message: checked.problem });
    else out[key] = checked;
  }
  // checkValue returned each value in its spec's shape (CheckedValue).
  return out as CheckedFields<T>;
}

/**
 * Whether `input` is what parseDbManagerConfig returns (numbers where durations were, every connection with its
 * `explicit` list), so it is used as it is, not validated again.
 */
export function isParsedConfig(input: unknown): input is DbManagerConfig {
  return (
    isPlainObject(input) &&
    typeof input.retryAttempts === 'number' &&
    isPlainObject(input.poolDefaults) &&
    isPlainObject(input.connections) &&
    Object.values(input.connections).every((c) => isPlainObject(c) && Array.isArray(c.explicit))
  );
}

/** The installed MikroORM, or undefined when there is none (a config checked without it). */
function runningMikroOrm(): { major: MikroOrmMajor; version: string } | undefined {
  try {
    return mikroOrm();
  } catch {
    return undefined;
  }
}
