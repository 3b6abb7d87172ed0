import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale, REPO_ROOT } from '../support/build-once';
import { onlyOnMikroOrm } from '../support/mikro-orm-leg';

// Started on a Node.js older than MikroORM 7 supports — the system Node 20 of these machines, say — the library must
// stop first, with a message saying which Node it needs, before better-sqlite3 13 loads (it crashes Node 20 with a
// segmentation fault). A process of its own, on that older Node: the test runner itself runs on Node 24.

/** The first `node` on PATH outside node_modules (the machine's own), with its version; undefined when none. */
function systemNode(): { path: string; version: string } | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || dir.includes('node_modules')) continue;
    const path = join(dir, 'node');
    if (!existsSync(path)) continue;
    const version = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (version) return { path, version };
  }
  return undefined;
}

const node = systemNode();
const tooOld = node !== undefined && Number(node.version.split('.')[0]) < 22;
const skipReason =
  onlyOnMikroOrm(7, 'refusing a Node.js too old for MikroORM 7') ??
  (tooOld ? undefined : `no Node.js older than 22 on PATH outside node_modules to start the library on (found ${node?.version ?? 'none'})`);
if (skipReason && !skipReason.includes('MikroORM')) console.log(`[node guard] skipped: ${skipReason}`);

describe.skipIf(skipReason)('the library on a Node.js too old for MikroORM 7', () => {
  beforeAll(() => buildIfStale(), 180_000);

  it('stops at import with a message naming the Node it needs, before any native driver loads', () => {
    // Importing the package, then opening an SQLite connection (better-sqlite3 would crash this Node).
    const program = `
      const { DbManager } = require(${JSON.stringify(join(REPO_ROOT, 'dist', 'index.js'))});
      DbManager.create({ connections: { main: { type: 'sqlite', filepath: ':memory:' } } }).then(() => console.log('connected'));
    `;
    const child = spawnSync(node!.path, ['-e', program], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    console.log(`[node guard] Node ${node!.version}: exit ${child.status}, signal ${child.signal}; stderr: ${child.stderr.split('\n').find((l) => l.includes('MikroORM 7')) ?? child.stderr.slice(0, 300)}`);
    expect(child.signal, 'ended by a signal (a native crash)').toBeNull();
    expect(child.status).toBe(1);
    expect(child.stdout).not.toContain('connected');
    expect(child.stderr).toContain(`MikroORM 7 needs Node ≥ 22.17, and this is Node ${node!.version}`);
    expect(child.stderr).toMatch(/install MikroORM 6\.6/);
  });
});
