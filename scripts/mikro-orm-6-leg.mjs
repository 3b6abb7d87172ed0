// The MikroORM 6.6.16 leg, shared by `npm run test:mikro-orm-6` and `npm run bench:mikro-orm-6`: it copies the
// repository (tracked and new files) outside its own tree — under the repository, npm would put the root's
// node_modules/.bin, with its Node 24, on PATH — swaps in legs/mikro-orm-6/package.json and its lockfile, installs
// them with npm ci (again only when the lockfile changed since the last run there) and builds it there.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const root = new URL('..', import.meta.url).pathname;

/** Prepares the leg in DBM_LEG_DIR (or a folder under the OS temp folder); returns `sh`, which runs a command there. */
export function prepareLeg() {
  const dir = process.env.DBM_LEG_DIR ?? join(tmpdir(), 'nestjs-dbmanager-mikro-orm-6');
  const leg = join(root, 'legs', 'mikro-orm-6');

  // Only the system's Node.js: drop every node_modules/.bin npm put on PATH for the root.
  const PATH = process.env.PATH.split(':').filter((entry) => !entry.includes('node_modules/.bin') && !entry.includes('node-gyp-bin')).join(':');
  const env = { ...process.env, PATH, DBM_EXPECT_MIKRO_ORM: '6' };
  delete env.npm_config_nodedir;
  for (const key of Object.keys(env)) if (key.startsWith('npm_') && key !== 'npm_config_cache') delete env[key];

  const sh = (command, args, extraEnv = {}) => {
    const result = spawnSync(command, args, { cwd: dir, env: { ...env, ...extraEnv }, stdio: 'inherit' });
    if (result.status !== 0) process.exit(result.status ?? 1);
  };

  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(dir)) if (entry !== 'node_modules') rmSync(join(dir, entry), { recursive: true, force: true });
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) {
    if (!existsSync(join(root, file))) continue; // deleted in the working tree
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(root, file), join(dir, file));
  }
  copyFileSync(join(leg, 'package.json'), join(dir, 'package.json'));
  copyFileSync(join(leg, 'package-lock.json'), join(dir, 'package-lock.json'));

  const lockHash = createHash('sha256').update(readFileSync(join(dir, 'package-lock.json'))).digest('hex');
  const stamp = join(dir, 'node_modules', '.dbm-lock-hash');
  const node = execFileSync('node', ['--version'], { env, encoding: 'utf8' }).trim();
  console.log(`[leg mikro-orm-6] ${dir} on Node ${node}`);
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== lockHash) {
    sh('npm', ['ci', '--no-audit', '--no-fund']);
    writeFileSync(stamp, lockHash);
  }
  sh('npm', ['run', 'build']);
  return { dir, sh };
}
