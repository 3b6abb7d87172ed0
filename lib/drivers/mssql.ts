import type { ConnectionConfig } from '../config/config.types';
import { TLS_REQUIRED_MODES } from '../config/config-schema';
import { describeTarget } from '../config/dsn';
import { tlsDemand } from '../config/ssl-mode';
import { skipDestroyOfClosed } from './adapters/knex';
import { closeTedious, isClosed, tlsState, watchRequests } from './adapters/tedious';
import { type DbDriver, ormDriverLoader } from './driver';
import { mikroOrm } from '../mikro-orm-version';
import type { KnexDialect } from './knex/dialect';
import { KnexSession } from './knex/knex-session';
import { MssqlSession } from './kysely/mssql-session';
import { withMethodsReplaced } from './native-watch';
import { FOREVER } from './pool-timing';
import { serverOrmOptions } from './server-options';

/** DSN query parameters that become tedious options. */
const DSN_OPTIONS = ['encrypt', 'trustServerCertificate', 'instanceName'];


/**
 * Login failed (18456), or the database cannot be opened: tedious reports both as ELOGIN, flagging the transient ones
 * (Azure failover, throttling) that a retry can fix; and a TLS our check refused.
 */
function isPermanentError(error: unknown): boolean {
  const { code, isTransient } = (error ?? {}) as { code?: unknown; isTransient?: unknown };
  return (code === 'ELOGIN' && isTransient !== true) || code === 'EENCRYPT';
}

/**
 * `sslmode` as tedious options (the config parser already turned the DSN's `encrypt` / `trustServerCertificate` into
 * it, or checked that they agree); the DSN's `encrypt=strict` keeps TDS 8's TLS-first handshake.
 */
export function mssqlTls(config: ConnectionConfig): Record<string, unknown> {
  const { encrypt, trustServerCertificate } = config.dsnParams;
  const on = encrypt === 'strict' ? 'strict' : true;
  const demand = tlsDemand(config.sslmode, config.name);
  // Unset: tedious' own default (the login packet encrypted, the rest as the server wants); the DSN may still say whether to trust the certificate.
  if (demand === 'unset') return trustServerCertificate === undefined ? {} : { trustServerCertificate: trustServerCertificate === 'true' };
  if (demand === 'off') return { encrypt: false };
  return { encrypt: on, trustServerCertificate: !demand.verifyCertificate };
}

/** The sslmode that requires TLS, or undefined when the connection may run in plain text. */
function tlsRequiredBy(config: ConnectionConfig): string | undefined {
  return config.sslmode && TLS_REQUIRED_MODES.includes(config.sslmode) ? config.sslmode : undefined;
}

/** tedious options that come from the connection's config (they override the user's `options`). */
function tediousOptions(config: ConnectionConfig): Record<string, unknown> {
  const options: Record<string, unknown> = {
    appName: config.applicationName,
    // Bounds TCP connect, TLS and login: a server that accepts TCP and never answers fails after this.
    connectTimeout: config.connectTimeout || FOREVER,
    // tedious sends ATTENTION after this; the server cancels the statement and the connection stays usable. 0 = none.
    requestTimeout: config.queryTimeout,
    ...mssqlTls(config),
  };
  if (config.dsnParams.instanceName) options.instanceName = config.dsnParams.instanceName;
  return options;
}

/**
 * tedious' whole connection config on MikroORM 7, where the session makes the connections: MikroORM 7's own defaults
 * (what its MsSqlConnection would build), then the user's driver options (a tedious config), then ours.
 */
function tediousConnectionConfig(config: ConnectionConfig, user: Record<string, unknown>, useUtc: boolean): Record<string, unknown> {
  const options: Record<string, unknown> = {
    enableArithAbort: true,
    fallbackToDefaultDb: true,
    useUTC: useUtc,
    encrypt: false,
    ...(user.options as object | undefined),
    database: config.database ?? 'master',
    port: config.port ?? 1433,
    ...tediousOptions(config),
  };
  // A named instance is found through the SQL Browser, not on a port.
  if (options.instanceName) delete options.port;
  const authentication = user.authentication ?? { type: 'default', options: { userName: config.user, password: config.password } };
  return { ...user, server: config.host, authentication, options };
}

/** What a SQL Server pool adds to knex's (MikroORM 6): tedious' options, a TLS check that fails closed, and bounded destroys. */
function mssqlDialect(config: ConnectionConfig): KnexDialect {
  return {
    singleConnection: false,
    isPermanentError,
    // knex spreads `connection.options` last into tedious' options, so ours go there.
    connectionSettings: (user) => ({ ...user, options: { ...(user.options as object | undefined), ...tediousOptions(config) } }),
    // tedious with encrypt: true goes on in plain text when the server answers "encryption not supported": refuse that.
    async prepareConnection(connection) {
      const mode = tlsRequiredBy(config);
      // TDS 8 (encrypt=strict) wraps the socket in TLS before any TDS is sent: connected means encrypted.
      if (!mode || config.dsnParams.encrypt === 'strict') return;
      const tls = tlsState(connection);
      if (tls === 'yes') return;
      closeTedious(connection);
      const why = tls === 'no' ? 'the server does not support encryption' : 'this tedious version does not say whether the connection is encrypted, so it is refused';
      throw Object.assign(new Error(`sslmode is "${mode}" but ${why}; use sslmode: disable to connect without TLS`), { code: 'EENCRYPT' });
    },
    // close() destroys the socket at once and fails the running request with ECLOSE (no round trip to a hung server).
    destroySocket: (connection) => closeTedious(connection),
    // knex closes a tedious connection and waits for `end`, which a connection the server already dropped has emitted
    // before: knex then waited for tarn's 5 s destroy timeout (and `orm.close()` with it).
    adaptClient: (client) => skipDestroyOfClosed(client, isClosed),
    watchNativeClient: (client, listener) => withMethodsReplaced(client, watchRequests(listener), ['execSql', 'execSqlBatch', 'callProcedure']),
  };
}

export const mssqlDriver: DbDriver = {
  type: 'mssql',
  packageName: '@mikro-orm/mssql',
  accessFamily: 'sql',

  loadOrmDriver: ormDriverLoader('mssql', '@mikro-orm/mssql', async () => (await import('@mikro-orm/mssql')).MsSqlDriver),

  ormOptions(config) {
    // The login's usual default database; MikroORM needs a name.
    const derived = serverOrmOptions(config, { defaultPort: 1433, dbName: config.database ?? 'master', passedDsnParams: DSN_OPTIONS });
    const plainByDsn = config.dsnParams.encrypt === 'false';
    if ((config.sslmode === 'disable' || config.sslmode === 'allow' || config.sslmode === 'prefer') && !plainByDsn) {
      derived.notApplicable.push(
        `sslmode "${config.sslmode}" becomes encrypt: false: tedious still encrypts the login packet when the server offers TLS, and uses TLS throughout when the server requires it`,
      );
    }
    if (config.sslmode === 'verify-ca') derived.notApplicable.push('sslmode "verify-ca" is treated as "verify-full": tedious checks the host name too');
    return derived;
  },

  target(config) {
    const port = config.port ?? 1433;
    return {
      dbSystem: 'microsoft.sql_server',
      namespace: config.database ?? 'master',
      address: config.host,
      port,
      display: describeTarget('mssql', config, { port, database: 'master' }),
    };
  },

  open: (orm, context) => {
    const { config } = context;
    if (mikroOrm().major === 6) return KnexSession.open(orm, context, mssqlDialect(config));
    const useUtc = (orm.config as unknown as { get(key: string): unknown }).get('forceUtcTimezone') === true;
    return MssqlSession.open(orm, context, {
      connectionConfig: (user) => tediousConnectionConfig(config, user, useUtc),
      isPermanentError,
      tlsRequiredBy: tlsRequiredBy(config),
    });
  },

  isPermanentError,
};
