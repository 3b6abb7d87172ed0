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
      const last = args[args.length - 1];
      if (typeof last === 'function') {
        const done = listener(sql);
        args[args.length - 1] = function (this: unknown, error: unknown, ...rest: unknown[]) {
          done(error ?? undefined);
          return (last as Method).call(this, error, ...rest);
        };
        return original(...args);
      }
      if (!promiseWhenNoCallback) return original(...args);
      const done = listener(sql);
      let result: unknown;
      try {
        result = original(...args);
      } catch (error) {
        done(error);
        throw error;
      }
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(() => done(), (error: unknown) => done(error));
      } else done();
      return result;
    };
}
