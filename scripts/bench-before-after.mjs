#!/usr/bin/env node
// `npm run bench:before-after`: issue 13's "before and after in the same run". On the MikroORM 6.6.16 leg (the only
// MikroORM c4d671f runs on), it builds the library at c4d671f — the last commit before issue 13 — next to today's, and
// runs bench/run-before-after.ts: every query path through both, interleaved with the A/A control. The result goes into
// this repository's bench/RESULTS.md between `<!-- before-after -->` markers.
// Node: the root's Node 24 (node_modules/.bin/node) when installed, else the system one; BENCH_NODE=<path> overrides.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildBeforeLib } from './before-lib.mjs';
import { prepareLeg, root } from './mikro-orm-6-leg.mjs';

/** The last commit before issue 13's work. */
const BEFORE = 'c4d671f';

const rootNode = join(root, 'node_modules', '.bin', 'node');
const node = process.env.BENCH_NODE ?? (existsSync(rootNode) ? rootNode : 'node');
const { dir, sh } = prepareLeg();
const before = buildBeforeLib({ root, commit: BEFORE, legDir: dir, node });

const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
const changed = git('status', '--porcelain', '--', 'lib') !== '';
const after = `${git('rev-parse', '--short=7', 'HEAD')} on ${git('rev-parse', '--abbrev-ref', 'HEAD')}${changed ? ', with uncommitted changes in lib/' : ''}`;
console.log(`[before-after] ${before.commit.slice(0, 7)} against ${after}, on Node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}`);

sh(node, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'bench/tsconfig.json']);
sh(node, ['bench/dist/bench/run-before-after.js'], {
  BENCH_BEFORE_LIB: before.dist,
  BENCH_BEFORE_REV: `${before.commit.slice(0, 7)}, the last commit before issue 13`,
  BENCH_AFTER_REV: after,
  DBM_BENCH_RESULTS: process.env.DBM_BENCH_RESULTS ?? join(root, 'bench', 'RESULTS.md'),
  DBM_BENCH_COMMAND: 'npm run bench:before-after',
});
