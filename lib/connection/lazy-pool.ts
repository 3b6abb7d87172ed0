import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '@nestjs/common';
import type { MikroORM } from '@mikro-orm/core';
import type { ConnectionConfig } from '../config/config.types';
import type { DriverSession } from '../drivers/driver';
import { QueryBuilderUnavailableError } from '../errors';
import { mikroOrm } from '../mikro-orm-version';
import { IdlePoolTimer } from './idle-pool-timer';
import { openingHandle } from './opening-handle';
import { errorMessage } from './redact';
import type { StatusBook } from './status-book';

/**
 * A connection's pool (its driver session): opened once however many ask at the same time (startup, a reconnect, a
 * first use), closed after idle_pool_timeout with no use, and reopened by the next use. While it may be closed on
 * purpose (`lazy`, idle_pool_timeout), the query builders and clients go out as handles that open it on first use.
 */
export class LazyPool {
  /** The open session; undefined until the first open succeeds, and while idle. */
  private current?: DriverSession;
  /** The pool being opened: concurrent openers share it. */
  private openingPool?: Promise<DriverSession>;
  /** A first use reopening an idle pool: concurrent users share it. */
  private reopening?: Promise<void>;
  /** An idle pool being closed: a use waits for it, then opens a new one. */
  private parking?: Promise<void>;
  /** Closes the pool once unused for idle_pool_timeout; undefined when that is 0. */
  private readonly idleTimer?: IdlePoolTimer;
  /** Handles kysely()/knex()/mongo() give out when the pool may be closed on purpose. */
  private handles?: Map<HandleAccessor, unknown>;

  constructor(
    private readonly config: ConnectionConfig,
    private readonly book: StatusBook,
    private readonly host: LazyPoolHost,
    private readonly logger: Logger,
  ) {
    if (config.idlePoolTimeout) {
      this.idleTimer = new IdlePoolTimer(config.idlePoolTimeout, () => this.closeIdlePool());
    }
  }

  /** The open session, if any (undefined while idle or being closed for idleness). */
  get session(): DriverSession | undefined {
    return this.current;
  }

  /** True when the pool may be closed on purpose, so the accessors hand out handles that reopen it. */
  get mayIdle(): boolean {
    return this.config.lazy || this.config.idlePoolTimeout > 0;
  }

  /** A use: idle_pool_timeout counts from now. */
  touch(): void {
    this.idleTimer?.touch();
  }

  /** The connection is up: the idle timer starts counting. */
  startIdleTimer(): void {
    this.idleTimer?.start();
  }

  /** The open session, opening the pool first when there is none (at startup, after the client could not connect, or idle). */
  async openPool(): Promise<DriverSession> {
    if (this.current) return this.current;
    this.openingPool ??= this.openNewPool().finally(() => (this.openingPool = undefined));
    return this.openingPool;
  }

  private async openNewPool(): Promise<DriverSession> {
    await this.parking;
    if (this.current) return this.current;
    const orm = this.host.orm();
    try {
      const session = await openingSession.run(this, () => this.host.openDriverSession(orm));
      this.current = session;
      this.idleTimer?.touch();
      return session;
    } catch (error) {
      await orm.close(true).catch(() => undefined);
      throw error;
    }
  }

  /** `DbConnection.open()`: opens the pool if it is idle, at once when it is open; concurrent callers share one reopen. */
  async open(): Promise<void> {
    this.book.assertOpen();
    this.idleTimer?.touch();
    if (this.current && !this.parking) return;
    // Down with no pool (never reached): the first use tries too, as the loop's reconnect does.
    this.reopening ??= this.reopen().finally(() => (this.reopening = undefined));
    return this.reopening;
  }

  private async reopen(): Promise<void> {
    await this.parking;
    if (this.current) return;
    this.book.assertOpen();
    if (this.book.status === 'idle') this.book.set('connecting');
    await this.host.connect();
  }

  /**
   * The handle an accessor gives out (one per accessor): forwards to the live object, or opens the pool first. The
   * caller has checked that the accessor fits the database type.
   */
  handle(what: HandleAccessor, live: (session: DriverSession) => unknown): unknown {
    this.book.assertOpen();
    this.handles ??= new Map();
    let handle = this.handles.get(what);
    if (!handle) {
      const liveObject = () => {
        const session = this.parking ? undefined : this.current;
        if (!session) return undefined;
        const object = live(session);
        if (object === undefined) throw new QueryBuilderUnavailableError(this.config.name, what as 'kysely()' | 'knex()', mikroOrm().version);
        return object as object;
      };
      // The check a plain accessor makes at once (the other major's builder): made once here too.
      if (this.current) liveObject();
      else if (what !== 'mongo()' && what !== (mikroOrm().major === 6 ? 'knex()' : 'kysely()')) throw new QueryBuilderUnavailableError(this.config.name, what, mikroOrm().version);
      handle = openingHandle({ live: liveObject, open: () => this.open(), touch: () => this.idleTimer?.touch() });
      this.handles.set(what, handle);
    }
    return handle;
  }

  /** Runs before every query MikroORM's EntityManagers make: counts as use, and opens an idle pool first. */
  async beforeQuery(): Promise<void> {
    this.idleTimer?.touch();
    // MikroORM's own queries while a session opens the pool (connect-time statements) go straight through.
    if (openingSession.getStore() === this) return;
    if (this.current && !this.parking) return;
    if (this.book.status === 'closed') return;
    await this.open();
  }

  /**
   * idle_pool_timeout passed with no use: closes the pool (status `idle`); the next use opens a new one. Not while
   * anything holds or waits for a pooled connection, a ping runs, or the connection is not up.
   * True when done; false when it is not the moment (the timer looks again later).
   */
  private closeIdlePool(): boolean {
    const session = this.current;
    // Not up: nothing to close now; the timer starts again when it is up.
    if (this.book.status !== 'up' || !session) return true;
    if (this.parking || this.reopening || this.openingPool) return false;
    const { inUse, pending } = session.gauges();
    if (inUse + pending > 0 || this.host.busy()) return false;
    this.current = undefined;
    this.book.set('idle');
    this.logger.debug(`pool closed after ${this.config.idlePoolTimeout} ms unused (idle_pool_timeout); the next use reopens it`);
    this.parking = session
      .close()
      .catch((error) => this.logger.warn(`closing the idle pool failed: ${this.host.redact(errorMessage(error))}`))
      .finally(() => (this.parking = undefined));
    return true;
  }

  /** The connection is closing: no more idle closes, and an idle close under way has finished. */
  async stop(): Promise<void> {
    this.idleTimer?.stop();
    await this.parking;
  }

  /** close() tears the session down itself: from now on nothing reaches it. */
  detach(): void {
    this.current = undefined;
  }
}

/** What the pool asks of the connection that holds it. */
export interface LazyPoolHost {
  /** The MikroORM instance whose pool a session opens (a lazy connection's is built on this first call). */
  orm(): MikroORM;
  /** Opens the driver's session on that instance. */
  openDriverSession(orm: MikroORM): Promise<DriverSession>;
  /** One attempt to open the pool and reach the server, recording up or down (what a first use after idle runs). */
  connect(): Promise<void>;
  /** True while a ping, a reconnect or a connect of the connection's own is under way: the pool is not idle then. */
  busy(): boolean;
  /** Masks the connection's secrets in a log line. */
  redact(text: string): string;
}

/** An accessor whose handle outlives the pool: one handle per accessor. */
export type HandleAccessor = 'kysely()' | 'knex()' | 'mongo()';

/** The pool whose session is opening in this async context: MikroORM's queries meanwhile pass. */
const openingSession = new AsyncLocalStorage<LazyPool>();
