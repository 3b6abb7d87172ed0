import { describe, expect, it } from 'vitest';
import { openingHandle } from '../../lib/connection/opening-handle';

/** A query builder shaped like Kysely's: state in a private field, builders made by methods, results awaited. */
class Builder {
  readonly #rows: string[];
  constructor(rows: string[]) {
    this.#rows = rows;
  }
  selectFrom(table: string) {
    const rows = this.#rows;
    return { where: (column: string, value: unknown) => ({ execute: async () => rows.map((r) => `${table}.${column}=${String(value)}:${r}`) }) };
  }
  get fn() {
    return { count: (column: string) => `count(${column})` };
  }
  select(expression: unknown) {
    return { execute: async () => [expression] };
  }
  async *stream() {
    yield* this.#rows;
  }
}

/** A pool that is idle until opened; counts opens and uses. */
function pool() {
  const state = { live: undefined as Builder | undefined, opens: 0, touches: 0 };
  const source = {
    live: () => state.live,
    open: async () => {
      state.opens++;
      state.live ??= new Builder(['a', 'b']);
    },
    touch: () => void state.touches++,
  };
  return { state, handle: openingHandle<Builder>(source), close: () => (state.live = undefined) };
}

describe('the handle kysely()/knex()/mongo() give out on a connection that may be idle', () => {
  it('opens the pool when a query built on it is awaited, then runs it on the live builder', async () => {
    const { state, handle } = pool();
    const query = handle.selectFrom('t').where('id', 1);
    expect(state.opens).toBe(0);
    expect(await query.execute()).toEqual(['t.id=1:a', 't.id=1:b']);
    expect(state.opens).toBe(1);
  });

  it('forwards to the live builder while open (methods bound to it, private fields reachable) and opens again once closed', async () => {
    const { state, handle, close } = pool();
    await handle.selectFrom('t').where('x', 0).execute();
    expect(await handle.selectFrom('u').where('y', 2).execute()).toEqual(['u.y=2:a', 'u.y=2:b']);
    expect(state.opens).toBe(1);
    close();
    expect(await handle.selectFrom('v').where('z', 3).execute()).toHaveLength(2);
    expect(state.opens).toBe(2);
    expect(state.touches).toBeGreaterThanOrEqual(3);
  });

  it('replays a recording passed as an argument (db.fn.count(…) inside select) on the live builder', async () => {
    const { handle } = pool();
    expect(await handle.select(handle.fn.count('id')).execute()).toEqual(['count(id)']);
  });

  it('is not itself a promise (awaiting the root opens nothing), and for-await over a recorded stream opens the pool', async () => {
    const { state, handle } = pool();
    expect((handle as unknown as { then?: unknown }).then).toBeUndefined();
    const rows: string[] = [];
    for await (const row of handle.stream()) rows.push(row);
    expect(rows).toEqual(['a', 'b']);
    expect(state.opens).toBe(1);
  });

  it('rejects with the open error, so the caller sees why the pool could not be opened', async () => {
    const handle = openingHandle<Builder>({ live: () => undefined, open: async () => Promise.reject(new Error('ECONNREFUSED')), touch: () => undefined });
    await expect(handle.selectFrom('t').where('id', 1).execute()).rejects.toThrow('ECONNREFUSED');
  });
});
