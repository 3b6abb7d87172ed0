import type { ChildProcess } from 'node:child_process';
import { vi } from 'vitest';

/**
 * Waits until a server the test started (`child`) is ready — `ready()` holds — polling with Vitest's `vi.waitFor`;
 * fails at once if the child exits first, and after `timeoutMs` otherwise, `what` and `output()` in the error.
 */
export async function untilChildReady(child: ChildProcess, ready: () => Promise<boolean>, options: { timeoutMs: number; what: string; output?: () => string }): Promise<void> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  await vi.waitFor(
    async () => {
      if (exited()) return; // nothing to wait for any more: said below
      if (!(await ready())) throw new Error(`${options.what} not ready within ${options.timeoutMs} ms${options.output ? `:\n${options.output()}` : ''}`);
    },
    { timeout: options.timeoutMs, interval: 50 },
  );
  if (exited()) throw new Error(`${options.what} exited (code ${child.exitCode}, signal ${child.signalCode})${options.output ? `:\n${options.output()}` : ''}`);
}
