import './runtime-guard';
export { DbManagerModule, type DbManagerModuleAsyncOptions, type DbManagerModuleOptions, type DbManagerOptionsFactory } from './db-manager.module';
export { DbManager, type DbManagerCreateOptions, type DbManagerStats } from './manager/db-manager';
export { DbConnection } from './connection/db-connection';
export type { KnexQueryBuilder, KyselyQueryBuilder } from './query-builders';
export { DbHealthIndicator, type DbHealthCheckOptions, type DbHealthDetails } from './health/db-health.indicator';
export { DbManagerMetrics, METRIC, ACQUIRE_BUCKETS, HEALTH_CHECK_BUCKETS } from './metrics';
export { TRACER_NAME, sanitizeSql, summarizeSql } from './tracing';
export type { CloseReason, ConnectionEvents, ConnectionHealth, ConnectionStats, ConnectionStatus, ConnectionTarget, PoolGauges } from './vocabulary';
export { InjectConnection, InjectEntityManager, InjectRepository } from './decorators';
export { getConnectionToken, getEntityManagerToken, getRepositoryToken, DBMANAGER_CONFIG, type RepositoryTokenSource } from './tokens';
export type { FeatureEntity } from './feature-entities';
export type { DefaultDatabase, DefaultDatabaseHandles, DefaultOrmOf } from './default-database';
export { parseDbManagerConfig, type ParseConfigOptions } from './config/parse-config';
export { dbManagerYamlConfig, readDbManagerYaml } from './config/yaml-config';
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
  QueryBuilderUnavailableError,
  type ConfigIssue,
} from './errors';
