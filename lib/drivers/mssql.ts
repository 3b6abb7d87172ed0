import type { ConnectionConfig } from '../config/config.types';
import { TLS_REQUIRED_MODES } from '../config/config-schema';
import { describeTarget } from '../config/dsn';
import { unsupportedSslMode } from '../config/ssl-mode';
import type { QueryListener } from '../vocabulary';
import { skipDestroyOfClosed } from './adapters/knex';
import { closeTedious, isClosed, tlsState } from './adapters/tedious';
import { type DbDriver, notYetOnMikroOrm7, ormDriverLoader } from './driver';
import { mikroOrm } from '../mikro-orm-version';
import type { KnexDialect } from './knex/dialect';
import { KnexSession } from './knex/knex-session';
import { withMethodsReplaced } from './native-watch';
import { serverOrmOptions } from './server-options';

/** Longest timer Node accepts; tedious needs a number where "no limit" is meant. */
const FOREVER = 2_147_483_647;
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

/** A tedious Request as far as watching it goes: its SQL, and the callback tedious calls when it ends. */
interface TediousRequest {
  sqlTextOrProcedure?: unknown;
  callback?: (error: unknown, ...rest: unknown[]) => unknown;
}

/** tedious takes a Request object (SQL and callback inside it), not SQL arguments: wrap the request's callback. */
function watchRequests(listener: QueryListener) {
  return (original: (this: unknown, ...args: unknown[]) => unknown) =>
    function watched(this: unknown, ...args: unknown[]): unknown {
      const request = args[0] as TediousRequest | undefined;
      const callback = request?.callback;
      if (!request || typeof request.sqlTextOrProcedure !== 'string' || typeof callback !== 'function') return original(...args);
      const done = listener(request.sqlTextOrProcedure);
      request.callback = function (this: unknown, error: unknown, ...rest: unknown[]) {
        done(error ?? undefined);
        return callback.call(this, error, ...rest);
      };
      return original(...args);
    };
}

/**
 * `sslmode` as tedious options (the config parser already turned the DSN's `encrypt` / `trustServerCertificate` into
 * it, or checked that they agree); the DSN's `encrypt=strict` keeps TDS 8's TLS-first handshake.
 */
export function mssqlTls(config: ConnectionConfig): Record<string, unknown> {
  const { encrypt, trustServerCertificate } = config.dsnParams;
  const on = encrypt === 'strict' ? 'strict' : true;
  switch (config.sslmode) {
    case undefined:
      // tedious' own default (the login packet encrypted, the rest as the server wants); the DSN may still say whether to trust the certificate.
      return trustServerCertificate === undefined ? {} : { trustServerCertificate: trustServerCertificate === 'true' };
    case 'disable':
    case 'allow':
    case 'prefer':
      return { encrypt: false };
    case 'require':
      return { encrypt: on, trustServerCertificate: true };
    case 'verify-ca':
    case 'verify-full':
      return { encrypt: on, trustServerCertificate: false };
    default:
      return unsupportedSslMode(config.name);
  }
}

/** What a SQL Server pool adds to knex's: tedious' options, a TLS check that fails closed, and bounded destroys. */
function mssqlDialect(config: ConnectionConfig): KnexDialect {
  return {
    singleConnection: false,
    isPermanentError,
    connectionSettings(user) {
      // knex spreads `connection.options` last into tedious' options, so ours go there.
      const options: Record<string, unknown> = {
        ...(user.options as object | undefined),
        appName: config.applicationName,
        // Bounds TCP connect, TLS and login: a server that accepts TCP and never answers fails after this.
        connectTimeout: config.connectTimeout || FOREVER,
        // tedious sends ATTENTION after this; the server cancels the statement and the connection stays usable. 0 = none.
        requestTimeout: config.queryTimeout,
        ...mssqlTls(config),
      };
      if (config.dsnParams.instanceName) options.instanceName = config.dsnParams.instanceName;
      return { ...user, options };
    },
    // tedious with encrypt: true goes on in plain text when the server answers "encryption not supported": refuse that.
    async prepareConnection(connection) {
      if (!config.sslmode || !TLS_REQUIRED_MODES.includes(config.sslmode)) return;
      const tls = tlsState(connection);
      if (tls === 'yes') return;
      closeTedious(connection);
      const why = tls === 'no' ? 'the server does not support encryption' : 'this tedious version does not say whether the connection is encrypted, so it is refused';
      throw Object.assign(new Error(`sslmode is "${config.sslmode}" but ${why}; use sslmode: disable to connect without TLS`), { code: 'EENCRYPT' });
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

  open: (orm, context) => (mikroOrm().major === 7 ? notYetOnMikroOrm7('mssql') : KnexSession.open(orm, context, mssqlDialect(context.config))),

  isPermanentError,
};
