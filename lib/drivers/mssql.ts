import type { MikroORM } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import { TLS_REQUIRED_MODES } from '../config/config-schema';
import { describeTarget } from '../config/dsn';
import { unsupportedSslMode } from '../config/ssl-mode';
import { DriverNotInstalledError } from '../errors';
import { type DbDriver, importDriverPackage, type PoolObserver } from './driver';
import type { QueryListener } from '../tracing/query-listener';
import { attachKnexPool, type KnexDialectHooks, knexDriverMethods, knexOf, knexServerOptions, type PooledConnection } from './knex-pool';
import { withMethodsReplaced } from './native-watch';

/** The slice of a tedious `Connection` this file uses. */
interface TediousConnection extends PooledConnection {
  /** Set once tedious has torn the connection down and emitted `end`. */
  closed?: boolean;
  close(): void;
}

/** Longest timer Node accepts; tedious needs a number where "no limit" is meant. */
const FOREVER = 2_147_483_647;
const BOUNDED_DESTROY = Symbol('dbmanager.boundedDestroy');
/** DSN query parameters that become tedious options. */
const DSN_OPTIONS = ['encrypt', 'trustServerCertificate', 'instanceName'];

const hooks: KnexDialectHooks = {
  // tedious with encrypt: true goes on in plain text when the server answers "encryption not supported": refuse that.
  async prepareConnection(connection, config) {
    if (!config.sslmode || !TLS_REQUIRED_MODES.includes(config.sslmode)) return;
    const io = (connection as unknown as { messageIo?: { tlsNegotiationComplete?: boolean } }).messageIo;
    if (io && io.tlsNegotiationComplete === false) {
      (connection as TediousConnection).close();
      throw Object.assign(new Error(`sslmode is "${config.sslmode}" but the server does not support encryption; use sslmode: disable to connect without TLS`), {
        code: 'EENCRYPT',
      });
    }
  },
  // close() destroys the socket at once and fails the running request with ECLOSE (no round trip to a hung server).
  destroySocket: (connection) => (connection as TediousConnection).close(),
  isPermanentError(error) {
    // Login failed (18456), or the database cannot be opened: tedious reports both as ELOGIN, flagging the
    // transient ones (Azure failover, throttling) that a retry can fix.
    const { code, isTransient } = (error ?? {}) as { code?: unknown; isTransient?: unknown };
    return (code === 'ELOGIN' && isTransient !== true) || code === 'EENCRYPT';
  },
};

/**
 * knex destroys a tedious connection by calling close() and waiting for `end`; a connection the server already
 * dropped has emitted `end` before, so knex waited for tarn's 5 s destroy timeout (and `orm.close()` with it).
 */
function boundDestroy(orm: MikroORM): void {
  const client = knexOf(orm).client as unknown as {
    destroyRawConnection(connection: TediousConnection): Promise<void>;
    [BOUNDED_DESTROY]?: boolean;
  };
  if (client[BOUNDED_DESTROY]) return;
  client[BOUNDED_DESTROY] = true;
  const destroy = client.destroyRawConnection.bind(client);
  client.destroyRawConnection = (connection) => (connection?.closed ? Promise.resolve() : destroy(connection));
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
function tlsOptions(config: ConnectionConfig, notApplicable: string[]): Record<string, unknown> {
  const { encrypt, trustServerCertificate } = config.dsnParams;
  const on = encrypt === 'strict' ? 'strict' : true;
  switch (config.sslmode) {
    case undefined:
      // tedious' own default (the login packet encrypted, the rest as the server wants); the DSN may still say whether to trust the certificate.
      return trustServerCertificate === undefined ? {} : { trustServerCertificate: trustServerCertificate === 'true' };
    case 'disable':
    case 'allow':
    case 'prefer':
      if (encrypt !== 'false') {
        notApplicable.push(
          `sslmode "${config.sslmode}" becomes encrypt: false: tedious still encrypts the login packet when the server offers TLS, and uses TLS throughout when the server requires it`,
        );
      }
      return { encrypt: false };
    case 'require':
      return { encrypt: on, trustServerCertificate: true };
    case 'verify-ca':
      notApplicable.push('sslmode "verify-ca" is treated as "verify-full": tedious checks the host name too');
      return { encrypt: on, trustServerCertificate: false };
    case 'verify-full':
      return { encrypt: on, trustServerCertificate: false };
    default:
      return unsupportedSslMode(config.name);
  }
}

export const mssqlDriver: DbDriver = {
  type: 'mssql',
  packageName: '@mikro-orm/mssql',

  async loadOrmDriver(connectionName) {
    const pkg = await importDriverPackage(() => import('@mikro-orm/mssql'));
    if (!pkg) throw new DriverNotInstalledError(connectionName, 'mssql', this.packageName);
    return pkg.MsSqlDriver;
  },

  ormOptions(config: ConnectionConfig, observer: PoolObserver) {
    return knexServerOptions(config, observer, hooks, {
      defaultPort: 1433,
      // The login's usual default database; MikroORM needs a name.
      dbName: config.database ?? 'master',
      passedDsnParams: DSN_OPTIONS,
      connection(user, notApplicable) {
        // knex spreads `connection.options` last into tedious' options, so ours go there.
        const options: Record<string, unknown> = {
          ...(user.options as object | undefined),
          appName: config.applicationName,
          // Bounds TCP connect, TLS and login: a server that accepts TCP and never answers fails after this.
          connectTimeout: config.connectTimeout || FOREVER,
          // tedious sends ATTENTION after this; the server cancels the statement and the connection stays usable. 0 = none.
          requestTimeout: config.queryTimeout,
          ...tlsOptions(config, notApplicable),
        };
        if (config.dsnParams.instanceName) options.instanceName = config.dsnParams.instanceName;
        return { ...user, options };
      },
    });
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

  ...knexDriverMethods(hooks),
  attach(orm, config, observer) {
    boundDestroy(orm);
    attachKnexPool(orm, config, observer, hooks);
  },
  watchNativeClient: (client, listener) => withMethodsReplaced(client as object, watchRequests(listener), ['execSql', 'execSqlBatch', 'callProcedure']),
};
