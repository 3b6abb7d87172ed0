// The library as it was at an earlier commit, built for `npm run bench:before-after`: `git archive` of that commit's
// lib/ and tsconfigs (the work tree is not touched), compiled with the leg's TypeScript into a folder under the OS
// temp folder whose node_modules is a link to the leg's. Its imports (@mikro-orm/*, @nestjs/*, prom-client…) so
// resolve, through the link's real path, to the very module instances today's build uses: the two builds differ in
// our code only. Kept per commit and leg, so a second run starts at once.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Builds `commit` of the repository at `root` against the node_modules of `legDir` (once); returns the folder of its
 * index.js and the commit's full hash.
 */
export function buildBeforeLib({ root, commit, legDir, node }) {
  const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
  const full = git('rev-parse', '--verify', `${commit}^{commit}`);
  const legKey = createHash('sha256').update(legDir).digest('hex').slice(0, 8);
  const dir = join(tmpdir(), `nestjs-dbmanager-before-${full.slice(0, 12)}-${legKey}`);
  const dist = join(dir, 'dist');
  const built = join(dir, '.dbm-built');
  if (existsSync(built)) {
    console.log(`[before ${full.slice(0, 7)}] built in ${dist}`);
    return { dist, commit: full };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = execFileSync('git', ['archive', full, 'lib', 'tsconfig.json', 'tsconfig.build.json', 'package.json'], { cwd: root, maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  symlinkSync(join(legDir, 'node_modules'), join(dir, 'node_modules'), 'dir');
  console.log(`[before ${full.slice(0, 7)}] compiling its lib/ into ${dist}`);
  execFileSync(node, [join(legDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.build.json')], { cwd: dir, stdio: 'inherit' });
  writeFileSync(built, `${full}\n`);
  return { dist, commit: full };
}
