/**
 * A stand-in for an object that is costly to build and may never be used: Nest resolves every provider at startup,
 * so a provider of a lazy tenant's EntityManager would build its MikroORM instance (~100 KB, milliseconds) for each
 * of a thousand tenants. The stand-in builds the real one on first touch and forwards everything to it (methods bound
 * to it: MikroORM keeps state in private fields a proxy cannot reach); `instanceof` sees the real one's class, and
 * `constructor` says `kind` without building it.
 */
export function deferredObject<T extends object>(real: () => T, kind: abstract new (...args: never[]) => T): T {
  return new Proxy({} as T, {
    get: (_target, prop) => {
      // What Nest asks of every provider (is it a promise, does it have lifecycle hooks) is not a use: neither an
      // EntityManager nor a MikroORM instance has these.
      if (PROBED.has(prop)) return undefined;
      // Nest's discovery reads every provider's constructor at startup: the class it will be, not a reason to build it.
      if (prop === 'constructor') return kind;
      const object = real();
      const value = Reflect.get(object, prop, object) as unknown;
      return typeof value === 'function' ? value.bind(object) : value;
    },
    set: (_target, prop, value) => Reflect.set(real(), prop, value),
    has: (_target, prop) => prop in real(),
    getPrototypeOf: () => Object.getPrototypeOf(real()) as object | null,
  });
}

const PROBED = new Set<PropertyKey>(['then', 'onModuleInit', 'onApplicationBootstrap', 'onModuleDestroy', 'beforeApplicationShutdown', 'onApplicationShutdown']);
