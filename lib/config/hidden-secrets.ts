import { CONNECTION_FIELDS, type FieldSpec } from './config-schema';

/** The connection fields that hold a secret (a password, or a DSN that may carry one). */
const SECRET_KEYS = Object.entries<FieldSpec>(CONNECTION_FIELDS).flatMap(([key, spec]) => (spec.kind === 'string' && spec.secret ? [key] : []));

/**
 * Turns a parsed connection's secret fields into non-enumerable accessors, as node-postgres does for its password:
 * `console.log`, `util.inspect` (even with `showHidden`, which shows `[Getter/Setter]`), `JSON.stringify`, Nest's
 * logger and `Object.entries` never see the value; `config.password` still reads it. A spread (`{ ...config }`)
 * drops them, so code that copies a config must name them.
 */
export function hideSecrets<T extends object>(config: T): T {
  for (const key of SECRET_KEYS) {
    if (!Object.hasOwn(config, key)) continue;
    let value = (config as Record<string, unknown>)[key];
    Object.defineProperty(config, key, {
      get: () => value,
      set: (next: unknown) => (value = next),
      enumerable: false,
      configurable: true,
    });
  }
  return config;
}

/** A copy of a parsed connection with `changes`, its secret fields carried over (and still hidden). */
export function copyConnectionConfig<T extends object>(config: T, changes: Partial<T>): T {
  const secrets = Object.fromEntries(SECRET_KEYS.filter((key) => Object.hasOwn(config, key)).map((key) => [key, (config as Record<string, unknown>)[key]]));
  return hideSecrets({ ...config, ...secrets, ...changes });
}
