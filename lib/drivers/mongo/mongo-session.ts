import type { MikroORM } from '@mikro-orm/core';
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, MongoClient } from 'mongodb';
import type { PoolGauges, QueryDone, QueryListener } from '../../vocabulary';
import { forgetServerSessions } from '../adapters/mongodb';
import type { DriverSession, SessionContext, TornDown } from '../driver';
import { isClientHandOver } from './client-hand-over';
import { mongoClientSettings } from './client-settings';
import { MongoPoolTracker } from './pool-tracker';

/**
 * One MongoClient of a connection, shared by the EntityManager and `mongo()`: built here with its pool listeners on
 * before its first connection, connected (bounded by connect_timeout), then handed to MikroORM. A reconnect that
 * rebuilds the client opens a new session.
 */
export class MongoSession implements DriverSession {
  private constructor(
    private readonly orm: MikroORM,
    private readonly client: MongoClient,
    private readonly tracker: MongoPoolTracker,
    private readonly context: SessionContext,
  ) {}

  /** Connects a new client; a failed connect closes it, so nothing stays open. */
  static async open(orm: MikroORM, context: SessionContext, MongoClientClass: typeof MongoClient): Promise<MongoSession> {
    const { url, options } = mongoClientSettings(context.config);
    const client = new MongoClientClass(url, options);
    const tracker = MongoPoolTracker.track(client, context.config.maxOpenConns, context.observer);
    try {
      await client.connect();
      // MikroORM adopts a MongoClient given as its driverOptions (it must be an instance of its own mongodb's class).
      const handOver = orm.config.get('driverOptions');
      if (isClientHandOver(handOver)) handOver.give(client);
      else orm.config.set('driverOptions', client as never);
      await orm.em.getDriver().connect();
    } catch (error) {
      await client.close(true).catch(() => undefined);
      throw error;
    }
    const session = new MongoSession(orm, client, tracker, context);
    if (context.queries) session.reportCommands(context.queries);
    return session;
  }

  gauges(): PoolGauges {
    return this.tracker.gauges();
  }

  /**
   * `ping` with `timeoutMS`: the driver bounds server selection, checkout and the round trip, and closes a socket
   * whose answer did not come, so a timed-out ping leaves nothing queued.
   */
  async ping(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new Error('ping cancelled: the connection is closing');
    const readPreference = this.client.options.readPreference;
    await this.client.db('admin').command({ ping: 1 }, { readPreference, ...(timeoutMs > 0 ? { timeoutMS: timeoutMs } : {}) });
  }

  mongo(): MongoClient {
    return this.client;
  }

  // DbConnection refuses withNativeClient for MongoDB (use mongo()); the client is what it would lend.
  async withNativeClient<T>(fn: (client: unknown) => Promise<T> | T): Promise<T> {
    return fn(this.client);
  }

  // MongoClient.close() interrupts the operations still holding a connection; this only reports how many there are.
  abort(): TornDown {
    return { inUse: this.tracker.gauges().inUse, connecting: 0 };
  }

  async close(): Promise<void> {
    // With no idle connection, close() would open one for `endSessions`: to a hung server that never ends.
    if (this.tracker.gauges().idle === 0 && !forgetServerSessions(this.client)) {
      this.context.warn('this MongoDB driver keeps its server sessions elsewhere: closing may open a connection to end them');
    }
    await this.orm.close(true);
    const handOver = this.orm.config.get('driverOptions');
    if (isClientHandOver(handOver)) handOver.give(undefined);
  }

  /**
   * Every command the EntityManager or mongo() runs, as `<command> <collection>` (never its filter or documents).
   * Health pings stay out, as they do for SQL.
   */
  private reportCommands(listener: QueryListener): void {
    const running = new Map<number, QueryDone>();
    this.client.on('commandStarted', (e: CommandStartedEvent) => {
      if (e.commandName === 'ping') return;
      const target = e.command[e.commandName] as unknown;
      running.set(e.requestId, listener(typeof target === 'string' ? `${e.commandName} ${target}` : e.commandName));
    });
    const end = (requestId: number, error?: unknown) => {
      running.get(requestId)?.(error);
      running.delete(requestId);
    };
    this.client.on('commandSucceeded', (e: CommandSucceededEvent) => end(e.requestId));
    this.client.on('commandFailed', (e: CommandFailedEvent) => end(e.requestId, e.failure));
  }
}
