import { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import { ConnectionClosedError } from '../errors';
import type { ConnectionEvents, ConnectionStatus } from '../vocabulary';

/**
 * What a connection says about itself: its status, when it was last checked, its last error and how often it came
 * back from down; each change logged once and told to the listeners of its events (metrics, tracing, logging).
 */
export class StatusBook {
  private current: ConnectionStatus;
  private checkedAt: Date | null = null;
  private failure: string | null = null;
  private reconnectCount = 0;
  /** The causes logged during the current down spell, so a new lasting cause (28P01 after 57P01) is logged once. */
  private downCauses = new Set<string>();
  private readonly emitter = new EventEmitter();

  constructor(
    private readonly name: string,
    initial: ConnectionStatus,
    private readonly logger: Logger,
  ) {
    this.current = initial;
    this.emitter.setMaxListeners(50);
  }

  /** `connecting`, `up`, `down`, `idle` or `closed`. */
  get status(): ConnectionStatus {
    return this.current;
  }

  /** When the server was last reached or found down; null before the first attempt. */
  get lastCheck(): Date | null {
    return this.checkedAt;
  }

  /** The last failure's message (secrets masked); null once reached again. */
  get lastFailure(): string | null {
    return this.failure;
  }

  /** Returns from down to up. */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** Refuses with ConnectionClosedError once the connection is closed. */
  assertOpen(): void {
    if (this.current === 'closed') throw new ConnectionClosedError(this.name);
  }

  /** The server answered: up. */
  recordSuccess(): void {
    this.checkedAt = new Date();
    this.failure = null;
    this.set('up');
  }

  /** The server could not be reached (`message` already masked): down, or a new cause while down. */
  recordFailure(message: string): void {
    this.checkedAt = new Date();
    this.failure = message;
    if (this.current === 'down') this.logNewCause(message);
    else this.set('down', message);
  }

  /** One return from down to up. */
  countReconnect(): void {
    this.reconnectCount++;
  }

  /** Moves to `next` (never out of `closed`), logging a fall and a return, and tells the `status` listeners. */
  set(next: ConnectionStatus, error?: string): void {
    const previous = this.current;
    if (previous === next || previous === 'closed') return;
    this.current = next;
    if (next === 'down') {
      this.downCauses = new Set([error ?? 'unknown error']);
      this.logger.warn(`is down: ${error ?? 'unknown error'}`);
    } else if (next === 'up' && previous === 'down') this.logger.log('is up again');
    this.emit('status', next, previous, error);
  }

  /** While down, each new cause is logged once: the one that lasts (a rotated password) may follow another. */
  private logNewCause(message: string): void {
    if (this.downCauses.has(message) || this.downCauses.size >= MAX_LOGGED_DOWN_CAUSES) return;
    this.downCauses.add(message);
    this.logger.warn(`is still down, now: ${message}`);
  }

  /** Subscribes to the connection's events; returns the unsubscribe. */
  on<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): () => void {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return () => this.emitter.off(event, listener as (...args: unknown[]) => void);
  }

  emit<E extends keyof ConnectionEvents>(event: E, ...args: ConnectionEvents[E]): void {
    this.emitter.emit(event, ...args);
  }

  /** The connection is closed: nobody is told anything more. */
  removeAllListeners(): void {
    this.emitter.removeAllListeners();
  }
}

/** Distinct causes logged per down spell at most (a flapping error must not flood the log). */
const MAX_LOGGED_DOWN_CAUSES = 10;
