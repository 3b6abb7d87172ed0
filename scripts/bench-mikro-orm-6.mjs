#!/usr/bin/env node
// `npm run bench:mikro-orm-6`: `npm run bench` on MikroORM 6.6.16 and the system Node.js (20), in the leg that
// scripts/mikro-orm-6-leg.mjs prepares outside the repository. Its results go into this repository's
// bench/RESULTS.md (the MikroORM 6 part), not the leg's copy.
import { join } from 'node:path';
import { prepareLeg, root } from './mikro-orm-6-leg.mjs';

const { sh } = prepareLeg();
sh('npm', ['run', 'bench'], { DBM_BENCH_RESULTS: process.env.DBM_BENCH_RESULTS ?? join(root, 'bench', 'RESULTS.md'), DBM_BENCH_COMMAND: 'npm run bench:mikro-orm-6' });
