import './runtime-guard';
export { DbManagerModule, type DbManagerModuleAsyncOptions, type DbManagerModuleOptions, type DbManagerOptionsFactory } from './db-manager.module';
export { DbManager, type DbManagerCreateOptions, type DbManagerOptions, type DbManagerStats } from './manager/db-manager';
export { DbConnection } from './connection/db-connection';
export type { KnexQueryBuilder, KyselyQueryBuilder } from './query-builders';
export { DbHealthIndicator, type DbHealthCheckOptions, type DbHealthDetails } from './health/db-health.indicator';
// The metric names (for dashboards, alerts and tests) and the tracer's scope name (to find our spans).
export { METRIC } from './metrics';
export { TRACER_NAME } from './tracing';
export type { CloseReason, ConnectionEvents, ConnectionHealth, ConnectionStats, ConnectionStatus, ConnectionTarget, PoolGauges } from './vocabulary';
export { InjectConnection, InjectEntityManager, InjectRepository } from './decorators';
export { getConnectionToken, getEntityManagerToken, getRepositoryToken, DBMANAGER_CONFIG, type RepositoryTokenSource } from './tokens';
export type { FeatureEntity } from './feature-entities';
export type { DefaultDatabase, DefaultDatabaseHandles, DefaultOrmOf } from './default-database';
export { parseDbManagerConfig, type ParseConfigOptions } from './config/parse-config';
export { dbManagerYamlConfig, readDbManagerYaml } from './config/yaml-config';
// The config's duration syntax (`500ms`, `1h30m`), for an app's own settings next to ours.
export { parseDuration } from './config/duration';
export { mikroOrm as mikroOrmVersion, type MikroOrmMajor } from './mikro-orm-version';
export type * from './config/config.types';
export {
  AcquireTimeoutError,
  type ConnectAbortReason,
  ConnectionAbortedError,
  ConnectionClosedError,
  ConnectionFailedError,
  ConnectionNotFoundError,
  DbManagerConfigError,
  DbManagerError,
  DriverNotInstalledError,
  NoDefaultConnectionError,
  NotMongoDatabaseError,
  NotSqlDatabaseError,
  PoolerRefusedError,
  QueryBuilderUnavailableError,
  type ConfigIssue,
} from './errors';
