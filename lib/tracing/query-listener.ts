import type { QueryListener } from '../vocabulary';

/** One listener that feeds every given one (undefined when none is given, so nothing gets attached). */
export function combineQueryListeners(...listeners: Array<QueryListener | undefined>): QueryListener | undefined {
  const active = listeners.filter((l): l is QueryListener => l !== undefined);
  if (active.length <= 1) return active[0];
  return (sql) => {
    const ends = active.map((listener) => listener(sql));
    return (error) => {
      for (const end of ends) end(error);
    };
  };
}

/** A short, value-free name for an error: its driver code (`42P01`, `SQLITE_BUSY`, `ECONNREFUSED`) or its class. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  if (typeof code === 'number') return String(code);
  if (error instanceof Error) return error.constructor?.name && error.constructor.name !== 'Error' ? error.constructor.name : error.name || 'Error';
  return '_OTHER';
}
