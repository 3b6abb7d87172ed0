import type { QueryListener } from '../vocabulary';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * A view of a lent native client whose listed methods are replaced; everything else reaches the real client (bound
 * to it). The real client is never modified, so the pool's own queries on it stay unobserved after the lend.
 */
export function withMethodsReplaced<T extends object>(client: T, replace: (original: Method) => Method, methods: readonly string[]): T {
  const replaced = new Map<PropertyKey, Method>();
  for (const name of methods) {
    const original = (client as Record<string, unknown>)[name];
    if (typeof original === 'function') replaced.set(name, replace((original as Method).bind(client)));
  }
  return new Proxy(client, {
    get(target, property) {
      const own = replaced.get(property);
      if (own) return own;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as Method).bind(target) : value;
    },
  });
}

/**
 * Wraps a query method whose first argument is the SQL (a string or `{ text }`) and whose end is reported by a
 * trailing callback, or else by the promise it returns when `promiseWhenNoCallback`. Calls it cannot follow (no SQL,
 * no callback and no promise, a submittable) run untraced.
 */
export function watchQueryMethod(listener: QueryListener, promiseWhenNoCallback: boolean): (original: Method) => Method {
  return (original) =>
    function watched(this: unknown, ...args: unknown[]): unknown {
      const first = args[0] as { text?: unknown; submit?: unknown } | string | undefined;
      const sql = typeof first === 'string' ? first : typeof first?.text === 'string' ? first.text : undefined;
      if (sql === undefined || (typeof first === 'object' && typeof first?.submit === 'function')) return original(...args);
      if (!promiseWhenNoCallback && typeof args[args.length - 1] !== 'function') return original(...args);
      return callObserved(original, args, listener(sql));
    };
}

/**
 * Calls `original(...args)` and tells `settled` how it ended: through a trailing callback when there is one, else
 * through the promise it returned (or at once, for a plain value or a throw). `settled` runs before the caller hears
 * of it, so it may still amend the error.
 */
export function callObserved(original: Method, args: unknown[], settled: (error?: unknown) => void): unknown {
  const last = args[args.length - 1];
  if (typeof last === 'function') {
    args[args.length - 1] = function (this: unknown, error: unknown, ...rest: unknown[]) {
      settled(error ?? undefined);
      return (last as Method).call(this, error, ...rest);
    };
    return original(...args);
  }
  let result: unknown;
  try {
    result = original(...args);
  } catch (error) {
    settled(error);
    throw error;
  }
  // A branch of its own: the caller's handlers, attached after this returns, run after settled.
  if (result && typeof (result as Promise<unknown>).then === 'function') {
    (result as Promise<unknown>).then(() => settled(), (error: unknown) => settled(error));
  } else settled();
  return result;
}
