import { mikroOrm, type MikroOrmMajor } from '../mikro-orm-version';
import { Logger } from '@nestjs/common';
import { type ConfigIssue, DbManagerConfigError } from '../errors';
import type { ConnectionConfig, DatabaseType, DbManagerConfig, DefaultOrm } from './config.types';
import {
  CONNECTION_DEFAULTS,
  CONNECTION_FIELDS,
  CONNECTION_NAME,
  type FieldSpec,
  type SslMode,
  MANAGER_DEFAULTS,
  MANAGER_FIELDS,
  POOL_DEFAULTS,
  POOL_FIELDS,
  RESERVED_MIKRO_ORM_KEYS,
  snakeCase,
} from './config-schema';
import { didYouMean } from './did-you-mean';
import { parseDsn } from './dsn';
import { readDsnParams, tdsSslMode } from './dsn-params';
import { hideSecrets } from './hidden-secrets';
import { checkValue, describe, isProblem } from './check-value';
import { interpolateEnv, isPlainObject } from './env-interpolation';

/** Options for `parseDbManagerConfig`. */
export interface ParseConfigOptions {
  /** Where `${VAR}` placeholders are looked up (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Receives non-fatal remarks (a seed alias used, a field ignored); default: the Nest logger. */
  warn?: (message: string) => void;
}

type Fields = Record<string, unknown>;
const logger = new Logger('DbManager');

/**
 * Validates and normalises a dbmanager configuration: what sits under `dbmanager:` (an object whose only key is
 * `dbmanager` is unwrapped), snake_case or camelCase, `${ENV}` interpolated, defaults applied, durations in ms.
 * Every problem is collected and thrown as one `DbManagerConfigError` listing each with its path.
 */
export function parseDbManagerConfig(input: unknown, options: ParseConfigOptions = {}): DbManagerConfig {
  const issues: ConfigIssue[] = [];
  const warn = options.warn ?? ((message: string) => logger.warn(message));
  let root = input;
  if (isPlainObject(root) && Object.keys(root).length === 1 && Object.hasOwn(root, 'dbmanager')) root = root.dbmanager;
  if (!isPlainObject(root)) {
    throw new DbManagerConfigError([{ path: 'dbmanager', message: `must be an object with a "connections" map, got ${describe(root)}` }]);
  }
  root = interpolateEnv(root, options.env ?? process.env, '', issues);
  const manager = readFields(root as Fields, MANAGER_FIELDS, '', issues);

  const connections: Record<string, ConnectionConfig> = {};
  const rawConnections = manager.connections ?? {};
  if (!isPlainObject(rawConnections)) {
    issues.push({ path: 'connections', message: `must be a map of connection name to settings, got ${describe(rawConnections)}` });
  } else {
    for (const [name, raw] of Object.entries(rawConnections)) {
      const connection = parseConnection(name, raw, manager, issues, warn);
      if (connection) connections[name] = connection;
    }
  }

  const defaultConnection = manager.defaultConnection as string | undefined;
  if (defaultConnection !== undefined && isPlainObject(rawConnections) && !Object.hasOwn(rawConnections, defaultConnection)) {
    const hint = didYouMean(defaultConnection, Object.keys(rawConnections));
    issues.push({
      path: 'default_connection',
      message: `names "${defaultConnection}", which is not a configured connection${hint ? ` (did you mean "${hint}"?)` : ''}`,
    });
  }
  const settings = {
    retryAttempts: (manager.retryAttempts as number | undefined) ?? MANAGER_DEFAULTS.retryAttempts,
    retryDelay: (manager.retryDelay as number | undefined) ?? MANAGER_DEFAULTS.retryDelay,
    retryMaxDelay: (manager.retryMaxDelay as number | undefined) ?? MANAGER_DEFAULTS.retryMaxDelay,
    healthCheckInterval: (manager.healthCheckInterval as number | undefined) ?? MANAGER_DEFAULTS.healthCheckInterval,
    enableAutoReconnect: (manager.enableAutoReconnect as boolean | undefined) ?? MANAGER_DEFAULTS.enableAutoReconnect,
    shutdownTimeout: (manager.shutdownTimeout as number | undefined) ?? MANAGER_DEFAULTS.shutdownTimeout,
  };
  if (settings.retryDelay > settings.retryMaxDelay) {
    issues.push({ path: 'retry_delay', message: `(${settings.retryDelay} ms) is longer than retry_max_delay (${settings.retryMaxDelay} ms)` });
  }
  if (issues.length) throw new DbManagerConfigError(issues);
  const poolDefaults = Object.fromEntries(POOL_FIELDS.filter(({ key }) => manager[key] !== undefined).map(({ key }) => [key, manager[key]]));
  return { defaultConnection, ...settings, poolDefaults, connections };
}

/** Validates one connection against the manager's defaults; pushes issues and returns undefined when it is unusable. */
export function parseConnection(name: string, raw: unknown, manager: Fields, issues: ConfigIssue[], warn: (m: string) => void): ConnectionConfig | undefined {
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
  const type = fields.type as DatabaseType | undefined;
  if (type === undefined) {
    if (!Object.hasOwn(fields, 'type') && !issues.some((i) => i.path === `${path}.type`)) {
      issues.push({ path: `${path}.type`, message: 'is required: postgres, sqlite, mssql, mongodb, mysql or mariadb' });
    }
    return undefined;
  }
  if (fields.name !== undefined && fields.name !== name) {
    issues.push({ path: `${path}.name`, message: `is "${String(fields.name)}" but must equal the connection's key "${name}" (or be left out)` });
  }
  for (const spec of CONNECTION_FIELDS) {
    if (spec.appliesTo && fields[spec.key] !== undefined && !spec.appliesTo.includes(type)) {
      issues.push({ path: `${path}.${snakeCase(spec.key)}`, message: `does not apply to a ${type} connection (only to ${spec.appliesTo.join(', ')})` });
    }
  }

  let dsnParams: Record<string, string> = {};
  const target: Pick<ConnectionConfig, 'host' | 'port' | 'user' | 'password' | 'database' | 'filepath'> = {
    host: fields.host as string | undefined,
    port: fields.port as number | undefined,
    user: fields.user as string | undefined,
    password: fields.password as string | undefined,
    database: fields.database as string | undefined,
    filepath: fields.filepath as string | undefined,
  };
  let dsnFields: Record<string, unknown> = {};
  if (typeof fields.dsn === 'string') {
    const parts = parseDsn(type, fields.dsn);
    if (typeof parts === 'string') {
      issues.push({ path: `${path}.dsn`, message: parts });
    } else {
      const overridden = (['host', 'port', 'user', 'password', 'database', 'filepath'] as const).filter((k) => fields[k] !== undefined && parts[k] !== undefined);
      if (overridden.length) warn(`Connection "${name}": dsn overrides ${overridden.join(', ')}`);
      for (const key of ['host', 'port', 'user', 'password', 'database', 'filepath'] as const) {
        if (parts[key] !== undefined) (target as Record<string, unknown>)[key] = parts[key];
      }
      const read = readDsnParams(type, parts.params, `${path}.dsn`, issues);
      for (const [key, value] of Object.entries(read.fields)) {
        if (fields[key] !== undefined && fields[key] !== value) {
          issues.push({ path: `${path}.${snakeCase(key)}`, message: `is ${describe(fields[key])} but the dsn's query says otherwise: say it in one place` });
        }
      }
      dsnFields = read.fields;
      dsnParams = read.rest;
    }
  }
  const pick = <T = string>(key: string) => (fields[key] ?? dsnFields[key]) as T | undefined;
  let sslmode = pick<SslMode>('sslmode');
  if (type === 'mssql') sslmode = tdsSslMode(sslmode, dsnParams, `${path}.dsn`, issues);
  if (type === 'sqlite' && !target.filepath) {
    issues.push({ path: `${path}.filepath`, message: 'is required for sqlite (a file path, or ":memory:"), or give a dsn' });
  }
  if (type !== 'sqlite' && !target.host && typeof fields.dsn !== 'string') {
    issues.push({ path: `${path}.host`, message: `is required for ${type} (or give a dsn)` });
  }

  const mikroOrm = (fields.mikroOrm ?? {}) as Record<string, unknown>;
  for (const key of RESERVED_MIKRO_ORM_KEYS) {
    if (Object.hasOwn(mikroOrm, key)) {
      issues.push({ path: `${path}.mikro_orm.${key}`, message: 'is set by the library from the connection fields; use those fields instead' });
    }
  }

  let defaultOrm = (fields.defaultOrm as string | undefined) ?? CONNECTION_DEFAULTS.defaultOrm;
  const running = runningMikroOrm();
  const builder = running?.major === 6 ? 'knex' : 'kysely';
  if (defaultOrm === 'bun' || defaultOrm === 'gorm') {
    const mapped = defaultOrm === 'bun' ? builder : 'orm';
    warn(`Connection "${name}": default_orm "${defaultOrm}" is the Go package's name; using "${mapped}"`);
    defaultOrm = mapped;
  }
  if (running && (defaultOrm === 'knex' || defaultOrm === 'kysely') && defaultOrm !== builder) {
    issues.push({
      path: `${path}.default_orm`,
      message: `is "${defaultOrm}", the query builder of MikroORM ${defaultOrm === 'knex' ? 6 : 7}, but MikroORM ${running.version} runs here: use "${builder}" (or orm, native)`,
    });
  }
  if (issues.length > before) return undefined;

  const pool = Object.fromEntries(
    POOL_FIELDS.map(({ key }) => [key, fields[key] ?? manager[key] ?? POOL_DEFAULTS[key as keyof typeof POOL_DEFAULTS]]),
  ) as Pick<ConnectionConfig, keyof typeof POOL_DEFAULTS>;
  // As Go's database/sql does: more idle connections than open ones cannot exist.
  pool.maxIdleConns = Math.min(pool.maxIdleConns, pool.maxOpenConns);

  return hideSecrets({
    name,
    type,
    dsn: fields.dsn as string | undefined,
    ...target,
    sslmode,
    schema: pick('schema'),
    authSource: pick('authSource'),
    replicaSet: pick('replicaSet'),
    readPreference: pick('readPreference'),
    dsnParams,
    ...pool,
    enableTracing: (fields.enableTracing as boolean | undefined) ?? CONNECTION_DEFAULTS.enableTracing,
    enableMetrics: (fields.enableMetrics as boolean | undefined) ?? CONNECTION_DEFAULTS.enableMetrics,
    enableLogging: (fields.enableLogging as boolean | undefined) ?? CONNECTION_DEFAULTS.enableLogging,
    defaultOrm: defaultOrm as DefaultOrm,
    tags: (fields.tags as Record<string, string> | undefined) ?? {},
    critical: (fields.critical as boolean | undefined) ?? CONNECTION_DEFAULTS.critical,
    applicationName: pick('applicationName') ?? name,
    mikroOrm,
    explicit: Object.keys(fields),
  });
}

/** Reads the known fields of one object (either spelling), reporting unknown keys, doubled keys and bad values. */
export function readFields(raw: Fields, specs: readonly FieldSpec[], path: string, issues: ConfigIssue[]): Fields {
  const out: Fields = {};
  const bySpelling = new Map<string, FieldSpec>();
  for (const spec of specs) {
    bySpelling.set(spec.key, spec);
    bySpelling.set(snakeCase(spec.key), spec);
  }
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(raw)) {
    const fieldPath = path ? `${path}.${key}` : key;
    const spec = bySpelling.get(key);
    if (!spec) {
      const spellings = [...bySpelling.keys()].filter((k) => (key.includes('_') ? !/[A-Z]/.test(k) : !k.includes('_')));
      const hint = didYouMean(key, spellings);
      issues.push({ path: fieldPath, message: `is not a known setting${hint ? ` (did you mean "${hint}"?)` : ''}` });
      continue;
    }
    const other = seen.get(spec.key);
    if (other !== undefined) {
      issues.push({ path: fieldPath, message: `is given twice, as "${other}" and "${key}": keep one spelling` });
      continue;
    }
    seen.set(spec.key, key);
    if (value === undefined || value === null) continue;
    const checked = checkValue(spec.type, value);
    if (isProblem(checked)) issues.push({ path: fieldPath, message: checked.problem });
    else out[spec.key] = checked;
  }
  return out;
}

/** The installed MikroORM, or undefined when there is none (a config checked without it). */
function runningMikroOrm(): { major: MikroOrmMajor; version: string } | undefined {
  try {
    return mikroOrm();
  } catch {
    return undefined;
  }
}
