import { getMaxListeners, setMaxListeners } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DbManager } from '../../lib';
import { freePort } from '../support/free-port';
import { builderQuery } from '../support/mikro-orm-leg';

/**
 * Many connections waiting at once (connecting at startup, in their reconnect loops, queued on a pool of one) must not
 * pile abort listeners on one shared AbortSignal: Node 20 then prints "MaxListenersExceededWarning: Possible
 * EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]", as the MikroORM 6 bench (Node 20) did
 * with 50 connections starting at once.
 */

const url = inject('postgresUrl');
const COUNT = 20;

// Node 20 warns past events.defaultMaxListeners (10) abort listeners on one signal; Node 24 sets no limit on an
// AbortSignal, so the warning never comes there. Every signal that gets an abort listener during these tests is given
// Node 20's limit when it has none, so that the test fails the same way on either leg.
const probed = new WeakSet<AbortSignal>();
const addEventListener = EventTarget.prototype.addEventListener;
beforeAll(() => {
  AbortSignal.prototype.addEventListener = function (this: AbortSignal, ...args: Parameters<EventTarget['addEventListener']>) {
    if (args[0] === 'abort' && !probed.has(this)) {
      probed.add(this);
      if (getMaxListeners(this) === 0) setMaxListeners(10, this);
    }
    return addEventListener.apply(this, args);
  };
});
afterAll(() => {
  delete (AbortSignal.prototype as Partial<AbortSignal>).addEventListener;
});

const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
beforeAll(() => void process.on('warning', onWarning));
afterAll(() => void process.off('warning', onWarning));
afterEach(() => void warnings.splice(0));

/** Warnings are emitted on the next tick; the ones about listeners, with where they were added. */
async function listenerWarnings(): Promise<string[]> {
  await new Promise((resolve) => setImmediate(resolve));
  return warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.stack ?? w.message);
}

describe('many waiters, no abort-listener pile-up', () => {
  it(`${COUNT} connections connecting at startup add no more than a few abort listeners to any one signal`, async () => {
    const connections = Object.fromEntries(Array.from({ length: COUNT }, (_, i) => [`db${i}`, { type: 'postgres' as const, dsn: url, max_open_conns: 1 }]));
    const manager = await DbManager.create({ health_check_interval: '0', connections });
    try {
      expect(manager.stats().healthyCount).toBe(COUNT);
      expect(await listenerWarnings()).toEqual([]);
    } finally {
      await manager.close();
    }
  }, 60_000);

  it(`${COUNT} connections down, each waiting in its reconnect loop, add no more than a few abort listeners to any one signal`, async () => {
    // Nothing listens on the port: every connect is refused at once, and each connection waits out its backoff.
    const port = await freePort();
    const connections = Object.fromEntries(
      Array.from({ length: COUNT }, (_, i) => [`down${i}`, { type: 'postgres' as const, host: '127.0.0.1', port, user: 'nobody', database: 'none', critical: false }]),
    );
    // Backoff of up to 5 s on the first attempt: the loops are all asleep when create() returns.
    const manager = await DbManager.create({ health_check_interval: '0', retry_delay: '5s', retry_max_delay: '5s', connections });
    try {
      expect(manager.stats().unhealthyCount).toBe(COUNT);
      expect(await listenerWarnings()).toEqual([]);
    } finally {
      await manager.close();
    }
  }, 60_000);

  it('50 callers queued on a pool of one add no more than a few abort listeners to any one signal', async () => {
    const manager = await DbManager.create({ health_check_interval: '0', connections: { one: { type: 'postgres', dsn: url, max_open_conns: 1 } } });
    try {
      const rows = await Promise.all(Array.from({ length: 50 }, (_, i) => builderQuery<{ n: number }>(manager.get('one'), `select ${i} as n, pg_sleep(0.01)`)));
      expect(rows.map((r) => Number(r[0].n))).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(await listenerWarnings()).toEqual([]);
    } finally {
      await manager.close();
    }
  }, 60_000);
});
