import type {
  ConnectionCheckedInEvent,
  ConnectionCheckedOutEvent,
  ConnectionCheckOutFailedEvent,
  ConnectionCheckOutStartedEvent,
  ConnectionClosedEvent,
  ConnectionReadyEvent,
  MongoClient,
  ServerHeartbeatFailedEvent,
} from 'mongodb';
import type { CloseReason, PoolGauges, PoolObserver } from '../../vocabulary';

/** One server's pool, by connection id (the driver keeps one pool per server). */
interface ServerPool {
  open: Set<number | string>;
  inUse: Set<number | string>;
  /** Whether each checkout still waiting started on a saturated pool (the driver's wait queue is FIFO). */
  waiting: boolean[];
}

/** How the driver's close reasons map onto ours (MongoDB has no connection lifetime, so never `lifetime`). */
function closeReason(reason: string): CloseReason {
  if (reason === 'idle') return 'idle';
  if (reason === 'poolClosed') return 'shutdown';
  return 'broken';
}

/**
 * Pool figures for a MongoClient, kept from its connection-pool (CMAP) events: the driver exposes no live counts.
 * Monitoring sockets are not pool connections, so they are not counted (the server sees one more per host).
 */
export class MongoPoolTracker {
  private readonly servers = new Map<string, ServerPool>();
  private pending = 0;

  private constructor(
    private readonly max: number,
    private readonly observer: PoolObserver,
  ) {}

  /** Listens to a client's pool events; call before `connect()` so the first connection is seen. */
  static track(client: MongoClient, max: number, observer: PoolObserver): MongoPoolTracker {
    const tracker = new MongoPoolTracker(max, observer);
    // Counted once its handshake is done, as the SQL pools count a connection once created.
    client.on('connectionReady', (e: ConnectionReadyEvent) => tracker.server(e.address).open.add(e.connectionId));
    client.on('connectionClosed', (e: ConnectionClosedEvent) => tracker.onClosed(e));
    client.on('connectionCheckOutStarted', (e: ConnectionCheckOutStartedEvent) => tracker.onCheckOutStarted(e));
    client.on('connectionCheckedOut', (e: ConnectionCheckedOutEvent) => tracker.onCheckedOut(e));
    client.on('connectionCheckOutFailed', (e: ConnectionCheckOutFailedEvent) => tracker.onCheckOutFailed(e));
    client.on('connectionCheckedIn', (e: ConnectionCheckedInEvent) => tracker.server(e.address).inUse.delete(e.connectionId));
    // The monitor notices a stopped server before any pooled connection is used: check health at once.
    client.on('serverHeartbeatFailed', (e: ServerHeartbeatFailedEvent) => observer.connectionError(e.failure));
    return tracker;
  }

  gauges(): PoolGauges {
    let open = 0;
    let inUse = 0;
    for (const pool of this.servers.values()) {
      open += pool.open.size;
      inUse += pool.inUse.size;
    }
    return { open, inUse, idle: open - inUse, pending: this.pending, max: this.max };
  }

  private server(address: string): ServerPool {
    let pool = this.servers.get(address);
    if (!pool) {
      pool = { open: new Set(), inUse: new Set(), waiting: [] };
      this.servers.set(address, pool);
    }
    return pool;
  }

  private onClosed(e: ConnectionClosedEvent): void {
    const pool = this.server(e.address);
    pool.open.delete(e.connectionId);
    pool.inUse.delete(e.connectionId);
    this.observer.closed(closeReason(e.reason));
    if (e.reason !== 'error') return;
    const error = (e as { error?: unknown }).error;
    this.observer.connectionError(error ?? new Error(`MongoDB connection ${e.connectionId} to ${e.address} failed`));
  }

  private onCheckOutStarted(e: ConnectionCheckOutStartedEvent): void {
    const pool = this.server(e.address);
    this.pending++;
    pool.waiting.push(pool.open.size - pool.inUse.size === 0 && pool.open.size >= this.max);
  }

  private onCheckedOut(e: ConnectionCheckedOutEvent): void {
    const pool = this.server(e.address);
    this.pending = Math.max(0, this.pending - 1);
    pool.inUse.add(e.connectionId);
    const waited = pool.waiting.shift() ?? false;
    this.observer.acquired(e.durationMS, waited);
  }

  private onCheckOutFailed(e: ConnectionCheckOutFailedEvent): void {
    this.pending = Math.max(0, this.pending - 1);
    this.server(e.address).waiting.shift();
    if (e.reason === 'timeout') this.observer.acquireTimedOut(e.durationMS ?? 0);
  }
}
