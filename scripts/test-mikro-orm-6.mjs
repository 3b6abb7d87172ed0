#!/usr/bin/env node
// `npm run test:mikro-orm-6`: the test suite on MikroORM 6.6.16 and the system Node.js (20), in the leg that
// scripts/mikro-orm-6-leg.mjs prepares outside the repository.
import { prepareLeg } from './mikro-orm-6-leg.mjs';

const { sh } = prepareLeg();
sh('npm', ['test', ...process.argv.slice(2)]);
