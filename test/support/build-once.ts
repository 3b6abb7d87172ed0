import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root (this file is test/support/build-once.ts). */
export const REPO_ROOT = join(__dirname, '..', '..');

const SOURCES = ['lib', 'sample-app/src', 'tsconfig.json', 'tsconfig.build.json', 'sample-app/tsconfig.json'];
const OUTPUTS = ['dist/index.js', 'sample-app/dist/main.js'];

/**
 * Runs `npm run build` (library → dist/, sample app → sample-app/dist/) unless both outputs are newer than every
 * source, so a test run builds at most once however many e2e files need the build (and not at all after CI's build).
 */
export async function buildIfStale(): Promise<'built' | 'up to date'> {
  const newestSource = Math.max(...SOURCES.map((p) => newestMtime(join(REPO_ROOT, p))));
  const oldestOutput = Math.min(...OUTPUTS.map((p) => mtimeOrZero(join(REPO_ROOT, p))));
  if (oldestOutput > newestSource) return 'up to date';
  const started = performance.now();
  await run('npm', ['run', 'build'], REPO_ROOT);
  console.log(`[e2e] npm run build: ${Math.round(performance.now() - started)} ms`);
  return 'built';
}

function mtimeOrZero(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newestMtime(join(path, entry))));
}

/** Runs a command to completion; resolves to its stdout, rejects with stdout and stderr when it fails. */
export function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${code}:\n${output.slice(-4000)}`)),
    );
  });
}
