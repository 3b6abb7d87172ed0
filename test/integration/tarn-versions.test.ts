import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idleTrimmer, missingInternals, type TarnPool } from '../../lib/drivers/adapters/tarn';
import { PoolWatch } from '../../lib/drivers/knex/pool-watch';
import type { CloseReason, PoolObserver } from '../../lib/vocabulary';
import { run } from '../support/build-once';
import { MIKRO_ORM_MAJOR } from '../support/mikro-orm-leg';

/**
 * knex depends on `tarn ^3.0.2`, so an app may run tarn 3.0.x, whose free resources have no `settle()` (3.1 added it).
 * The tarn adapter is run against both the tarn the installed stack brings (knex's on MikroORM 6, @mikro-orm/mssql's
 * pinned 3.1.2 on 7, where SQL Server still pools with tarn) and a scratch install of 3.0.2.
 */
type TarnModule = { Pool: new (options: Record<string, unknown>) => TarnPool<{ id: number }> };

let scratch: string;
const tarns: Array<[string, TarnModule]> = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'dbm-tarn-'));
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', scratch, 'tarn@3.0.2'], scratch);
  const fromScratch = createRequire(join(scratch, 'node_modules', 'index.js'));
  const [owner, ownerName] = MIKRO_ORM_MAJOR === 7 ? ['@mikro-orm/mssql', "@mikro-orm/mssql's"] : ['knex', "knex's"];
  const fromStack = createRequire(require.resolve(owner));
  tarns.push(['3.0.2 (scratch install)', fromScratch('tarn') as TarnModule], [`${fromStack('tarn/package.json').version} (${ownerName})`, fromStack('tarn') as TarnModule]);
}, 120_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the tarn adapter on tarn 3.0 and 3.1', () => {
  it.each([0, 1])('closes free connections beyond max_idle_conns on release, each counted as max_idle (tarn #%i)', async (which) => {
    const [version, tarn] = tarns[which];
    let nextId = 1;
    const destroyed: number[] = [];
    const pool = new tarn.Pool({ create: async () => ({ id: nextId++ }), destroy: (r: { id: number }) => void destroyed.push(r.id), min: 0, max: 4 });
    const closes: CloseReason[] = [];
    const observer: PoolObserver = { acquired: () => undefined, acquireTimedOut: () => undefined, closed: (reason) => closes.push(reason), connectionError: () => undefined };
    // Every internal the adapter relies on is there in both (3.0 lacks only settle(), which it does without).
    expect(missingInternals(pool), `tarn ${version}`).toEqual([]);
    const trimmer = idleTrimmer(pool);
    expect(trimmer, `tarn ${version}: the adapter finds the free list`).toBeDefined();
    const watch = new PoolWatch(observer, { max: 4, maxIdle: 1, idleMs: 60_000, lifetimeMs: 0 });
    watch.listen(pool, trimmer);

    const lent = await Promise.all([1, 2, 3].map(() => pool.acquire().promise));
    for (const resource of lent) pool.release(resource);

    await expect.poll(() => pool.numFree(), { timeout: 2_000 }).toBe(1);
    expect(destroyed).toHaveLength(2);
    expect(closes).toEqual(['max_idle', 'max_idle']);
    await (pool as unknown as { destroy(): Promise<unknown> }).destroy();
    expect(closes.at(-1)).toBe('shutdown');
  });

  it('degrades with one sentence per missing internal when a tarn keeps none of them', () => {
    const pool = { numFree: () => 0 } as unknown as TarnPool;
    expect(idleTrimmer(pool)).toBeUndefined();
    const missing = missingInternals(pool);
    expect(missing).toHaveLength(4);
    expect(missing.join('\n')).toMatch(/max_idle_conns is not enforced/);
    expect(missing.join('\n')).toMatch(/retried every 200 ms instead of with backoff/);
  });
});
