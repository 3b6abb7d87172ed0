import { join } from 'node:path';
import type { OursLib } from './support/apps';

/**
 * The library as it was before issue 13, for the `before:*` variants: its build at the commit that
 * scripts/before-lib.mjs compiled into the folder named by BENCH_BEFORE_LIB. That folder reaches the same
 * node_modules as today's build, so MikroORM, Nest, prom-client… are the very same modules in both: the only
 * difference between a `before:*` and an `ours:*` variant is our code.
 */
export function beforeLib(): OursLib {
  const dist = process.env.BENCH_BEFORE_LIB;
  if (!dist) throw new Error('the before:* variants need BENCH_BEFORE_LIB, the folder of the earlier build (npm run bench:before-after sets it)');
  // Its public API kept these three with the same use (forRoot(config), get(name), checkAll()), so today's types fit.
  return require(join(dist, 'index.js')) as OursLib;
}
