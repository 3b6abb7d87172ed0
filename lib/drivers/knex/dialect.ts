import type { QueryListener } from '../../vocabulary';
import type { KnexClient, RawConnection } from '../adapters/knex';

/**
 * What one database adds to a knex pool, made afresh for each pool (so its state — open sockets, the server's kind —
 * belongs to that pool and goes with it).
 */
export interface KnexDialect {
  /** True when the pool must keep exactly one connection for its data to live (SQLite `:memory:`). */
  readonly singleConnection: boolean;
  /** The statement a health ping runs (default `select 1`). */
  readonly pingSql?: string;
  /** The client library's connection settings (knex's `connection`), on top of the user's own. */
  connectionSettings?(user: Record<string, unknown>): Record<string, unknown>;
  /** Statements or checks run on each new connection (session settings, the TLS check). */
  prepareConnection?(connection: RawConnection): Promise<void>;
  /** True for connect errors a retry cannot fix (the driver's own rule): the pool then fails its waiting callers at once. */
  isPermanentError(error: unknown): boolean;
  /** Tears a connection's socket down at once, so a hung query or ping stops holding it. */
  destroySocket(connection: RawConnection): void;
  /** Tears down every socket the pool has open, connects under way included (shutdown's last resort). */
  destroyAllSockets?(): void;
  /** Adjusts the knex client once the pool exists. */
  adaptClient?(client: KnexClient): void;
  /** The view of a lent native client a caller gets (one that refuses what a pooler breaks), when not the client itself. */
  nativeClientView?(client: RawConnection): RawConnection;
  /** A view of a lent native client whose queries reach `listener` (tracing, query logging), for that lend only. */
  watchNativeClient?(client: RawConnection, listener: QueryListener): RawConnection;
}
