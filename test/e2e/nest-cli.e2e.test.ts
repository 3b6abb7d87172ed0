import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildIfStale, REPO_ROOT, run } from '../support/build-once';

// nest-cli.json at the top level: the Nest CLI sees the library and the sample app as projects of one repository,
// and `nest build` / `nest start` build and run the sample app (against the built library, as `npm start` does).
const NEST = join(REPO_ROOT, 'node_modules', '.bin', 'nest');
const SAMPLE_MAIN = join(REPO_ROOT, 'sample-app', 'dist', 'main.js');

beforeAll(async () => {
  await buildIfStale();
}, 180_000);

describe('the Nest CLI', () => {
  it('nest build builds the sample app (the default project)', async () => {
    const before = statSync(SAMPLE_MAIN).mtimeMs;
    const started = performance.now();
    await run(process.execPath, [NEST, 'build'], REPO_ROOT);
    console.log(`[nest-cli] nest build: ${Math.round(performance.now() - started)} ms`);
    expect(statSync(SAMPLE_MAIN).mtimeMs).toBeGreaterThan(before);
  }, 120_000);

  it('nest start builds and runs the sample app, which answers /health and stops on SIGTERM', async () => {
    // Its own process group: the CLI runs the app as a child of its own, and both must get the signal.
    const cli = spawn(process.execPath, [NEST, 'start', '--no-shell'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PORT: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    onTestFinished(() => {
      try {
        process.kill(-cli.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    let output = '';
    const baseUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening on" line within 90 s:\n${output}`)), 90_000);
      const collect = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      };
      cli.stdout.on('data', collect);
      cli.stderr.on('data', collect);
      void exited.then((code) => reject(new Error(`nest start exited (${code}) before listening:\n${output}`)));
    });
    const health = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(10_000) });
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');

    process.kill(-cli.pid!, 'SIGTERM');
    await exited;
    // The app itself is gone too: its port refuses.
    await expect(fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  }, 120_000);
});
