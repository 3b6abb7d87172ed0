import type { AppInjection } from './app-graph';
import type { DbManagerConfig } from './config/config.types';
import { tokenConnection } from './connection.providers';
import { type ConfigIssue, DbManagerConfigError } from './errors';
import type { FeatureRegistration } from './feature-entities';
import { repositoryProviders } from './repository.providers';

/**
 * Fails startup, before any pool opens, when a name listed in `connectionNames` or injected by a required dependency
 * of the app is missing from the configuration: one error naming each such connection, who injects it and the
 * configured names, instead of Nest's "can't resolve dependencies". An `@Optional()` injection may be missing.
 */
export function checkInjectedConnections(
  config: DbManagerConfig,
  listed: readonly string[],
  injections: readonly AppInjection[],
  features: readonly FeatureRegistration[],
): void {
  const repositories = new Map<unknown, string | undefined>(features.flatMap((f) => repositoryProviders(f.entities, f.name).map((p) => [p.provide, f.name] as const)));
  const connectionOf = (token: unknown) => tokenConnection(token) ?? (repositories.has(token) ? { name: repositories.get(token) } : undefined);
  const configured = Object.keys(config.connections);
  const isConfigured = (name: string) => Object.hasOwn(config.connections, name);
  const known = `(configured: ${configured.length ? configured.join(', ') : 'none'})`;
  const consumers = new Map<string | undefined, Set<string>>();
  for (const injection of injections) {
    const target = injection.optional ? undefined : connectionOf(injection.token);
    if (!target || (target.name === undefined ? configured.length > 0 : isConfigured(target.name))) continue;
    if (!consumers.has(target.name)) consumers.set(target.name, new Set());
    consumers.get(target.name)!.add(injection.consumer);
  }
  const issues: ConfigIssue[] = [];
  const missing: Array<string | undefined> = [];
  for (const name of listed) {
    if (isConfigured(name)) continue;
    issues.push({ path: `connections.${name}`, message: `is listed in connectionNames but missing from the configuration ${known}` });
    missing.push(name);
  }
  for (const [name, by] of consumers) {
    if (name !== undefined && listed.includes(name)) continue;
    const who = [...by].join(', ');
    missing.push(name);
    issues.push(
      name === undefined
        ? { path: 'connections', message: `has no connection, but ${who} injects the default one; configure a connection` }
        : { path: `connections.${name}`, message: `is injected by ${who} but missing from the configuration ${known}; add it or fix the name` },
    );
  }
  if (issues.length) throw new DbManagerConfigError(issues, missing[0]);
}

/** Names `forFeature` registered entities for that are not configured (yet: `add()` may bring them). */
export function featureNamesNotConfigured(config: DbManagerConfig, features: readonly FeatureRegistration[]): string[] {
  return [...new Set(features.flatMap((f) => (f.name !== undefined && !Object.hasOwn(config.connections, f.name) ? [f.name] : [])))];
}
