import type { MongoClient } from 'mongodb';

/**
 * How the session's MongoClient reaches MikroORM 7. MikroORM adopts a MongoClient given as `driverOptions`, but its
 * connection copies `driverOptions` when the ORM is built (and keeps that copy through close and reconnect), so a
 * client set later in the config is never seen. A function is called each time MikroORM builds its client: this one,
 * given as `driverOptions` when the ORM is built, hands over whichever client the session opened last.
 */
export interface ClientHandOver {
  (): MongoClient;
  /** The client MikroORM adopts from now on (undefined once closed: a use before the next open then says so). */
  give(client: MongoClient | undefined): void;
}

export function clientHandOver(connectionName: string): ClientHandOver {
  let current: MongoClient | undefined;
  const handOver = (() => {
    if (!current) throw new Error(`Connection "${connectionName}": the MongoDB client is not open. Wait until the connection is up (its status, or healthCheck()).`);
    return current;
  }) as ClientHandOver;
  handOver.give = (client) => (current = client);
  return handOver;
}

/** True for the hand-over a connection's ORM was built with (MikroORM 7). */
export function isClientHandOver(value: unknown): value is ClientHandOver {
  return typeof value === 'function' && typeof (value as Partial<ClientHandOver>).give === 'function';
}
