/**
 * What `kysely()`, `knex()` and `mongo()` hand out on a connection whose pool may be closed on purpose (`lazy`,
 * `idle_pool_timeout`): those accessors are synchronous, and opening a pool is not. While the pool is open the handle
 * forwards to the live query builder or client (so one kept in a field survives the pool being closed and reopened);
 * while it is idle it records the calls made on it — `kysely().selectFrom('t').selectAll().execute()` — and the
 * moment the result is awaited (or iterated with `for await`), opens the pool and replays them on the live one.
 * A synchronous result read off an idle handle (`compile()`, `toString()`) is still a recording: await
 * `connection.open()` first for those.
 */

/** How a handle reaches the live object. */
export interface HandleSource {
  /** The live builder or client while the pool is open; undefined while it is idle. */
  live(): object | undefined;
  /** Opens the pool (the connection's first-use path: failure leaves it down and rejects). */
  open(): Promise<void>;
  /** Told of every use of the handle, for idle_pool_timeout. */
  touch(): void;
}

type Step = { get: PropertyKey } | { call: unknown[] };

/** The steps a recording stands for, read by replay (to resolve a recording passed as an argument). */
const STEPS = Symbol('dbmanager.recordedSteps');

/** The handle: a callable (a Knex instance is a function) that forwards or records. */
export function openingHandle<T>(source: HandleSource): T {
  // A function target, so `knex('table')` can be called through it.
  return new Proxy(function handle() {}, {
    get(_target, prop) {
      source.touch();
      const live = source.live();
      if (live) return bound(live, prop);
      // `await handle` itself must not open anything: the root is not a promise.
      if (prop === 'then' || typeof prop === 'symbol') return undefined;
      return recording(source, [{ get: prop }]);
    },
    apply(_target, _this, args) {
      source.touch();
      const live = source.live();
      if (live) return Reflect.apply(live as (...a: unknown[]) => unknown, live, args);
      return recording(source, [{ call: args }]);
    },
    has(_target, prop) {
      const live = source.live();
      return live ? prop in live : false;
    },
  }) as T;
}

/** A member of the live object, methods bound to it (Kysely keeps its state in private fields a proxy cannot reach). */
function bound(live: object, prop: PropertyKey): unknown {
  const value = Reflect.get(live, prop, live) as unknown;
  return typeof value === 'function' ? value.bind(live) : value;
}

/** Calls made on an idle handle, replayed on the live object when the result is awaited or iterated. */
function recording(source: HandleSource, steps: Step[]): unknown {
  const settle = async (): Promise<unknown> => {
    await source.open();
    const live = source.live();
    if (!live) throw new Error('the pool closed again before the query could run');
    return replay(live, steps);
  };
  return new Proxy(function recorded() {}, {
    get(_target, prop) {
      if (prop === STEPS) return steps;
      if (prop === 'then') {
        return (onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) =>
          settle()
            .then(async (result) => (isThenable(result) ? await result : result))
            .then(onFulfilled, onRejected);
      }
      if (prop === Symbol.asyncIterator) {
        return () => asyncIterate(settle);
      }
      if (typeof prop === 'symbol') return undefined;
      return recording(source, [...steps, { get: prop }]);
    },
    apply(_target, _this, args) {
      return recording(source, [...steps, { call: args }]);
    },
  });
}

/** Replays recorded steps on the live object; a recording among the arguments (`db.fn.count('id')`) is replayed first. */
function replay(live: object, steps: readonly Step[]): unknown {
  let value: unknown = live;
  let owner: unknown = undefined;
  for (const step of steps) {
    if ('get' in step) {
      owner = value;
      value = Reflect.get(value as object, step.get, value);
    } else {
      const args = step.call.map((arg) => {
        const inner = recordedSteps(arg);
        return inner ? replay(live, inner) : arg;
      });
      value = Reflect.apply(value as (...a: unknown[]) => unknown, owner, args);
      owner = undefined;
    }
  }
  return value;
}

function recordedSteps(value: unknown): readonly Step[] | undefined {
  if (typeof value !== 'function') return undefined;
  return (value as unknown as Record<symbol, readonly Step[] | undefined>)[STEPS];
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** `for await` over a recorded call that returns an async iterable (Kysely's `stream()`, a MongoDB cursor). */
async function* asyncIterate(settle: () => Promise<unknown>): AsyncGenerator<unknown> {
  const iterable = (await settle()) as AsyncIterable<unknown>;
  yield* iterable;
}
