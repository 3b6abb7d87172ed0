/**
 * Connection names that decorators and `forFeature` asked for, so the root module registers their tokens without a
 * `connectionNames` list (as nestjs-pino does for its loggers). Decorators run when their class is defined, which is
 * code, once per process: hence one process-wide set. The root module reads it when Nest scans the app.
 */
const names = new Set<string>();

/** Records a name a decorator or `forFeature` uses (no name = the default connection, always registered). */
export function recordInjectedName(name: string | undefined): void {
  if (name !== undefined) names.add(name);
}

/** Every name recorded so far, in first-use order. */
export function injectedNames(): string[] {
  return [...names];
}
