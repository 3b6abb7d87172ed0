// Types only: Nest has loaded reflect-metadata by the time an app is read.
import type {} from 'reflect-metadata';
import type { ModulesContainer } from '@nestjs/core';

// Nest's own metadata keys (@nestjs/common/constants), written by @Inject, @Optional and emitDecoratorMetadata.
const PARAMTYPES = 'design:paramtypes';
const SELF_DECLARED_DEPS = 'self:paramtypes';
const OPTIONAL_DEPS = 'optional:paramtypes';
const PROPERTY_DEPS = 'self:properties_metadata';
const OPTIONAL_PROPERTY_DEPS = 'optional:properties_metadata';

/** One dependency of a provider, controller, enhancer or middleware in the app. */
export interface AppInjection {
  /** Who asks for it (a class name, or a factory provider's token). */
  consumer: string;
  token: unknown;
  /** `@Optional()` or `{ token, optional: true }`: Nest injects undefined when it is missing. */
  optional: boolean;
}

/** The part of Nest's InstanceWrapper read here. */
interface Wrapper {
  name?: unknown;
  token?: unknown;
  metatype?: unknown;
  inject?: readonly unknown[] | null;
  instance?: unknown;
}

/** The part of Nest's Module read here. */
interface AppModuleRef {
  providers?: Map<unknown, Wrapper>;
  controllers?: Map<unknown, Wrapper>;
  injectables?: Map<unknown, Wrapper>;
  middlewares?: Map<unknown, Wrapper>;
}

/**
 * Reads the app Nest assembled (every module, with what each class and factory injects) once scanning is over, i.e.
 * from a provider's factory. The one place that knows the shapes of Nest's container.
 */
export class AppGraph {
  private readonly wrappers: Wrapper[];

  constructor(container: ModulesContainer) {
    const modules = [...(container as unknown as Map<string, AppModuleRef>).values()];
    this.wrappers = modules.flatMap((m) => [m.providers, m.controllers, m.injectables, m.middlewares].flatMap((map) => (map ? [...map.values()] : [])));
  }

  /** The values of every `useValue` provider of this token, across all modules. */
  values<T>(token: symbol): T[] {
    return this.wrappers.filter((w) => w.token === token && w.instance !== undefined).map((w) => w.instance as T);
  }

  /** Every dependency every provider, controller, enhancer and middleware declares. */
  injections(): AppInjection[] {
    return this.wrappers.flatMap((wrapper) => {
      const consumer = String(typeof wrapper.name === 'string' ? wrapper.name : (wrapper.token as { name?: string })?.name ?? wrapper.token);
      if (Array.isArray(wrapper.inject)) return wrapper.inject.map((entry) => ({ consumer, ...factoryDependency(entry) }));
      return typeof wrapper.metatype === 'function' ? classDependencies(wrapper.metatype).map((d) => ({ consumer, ...d })) : [];
    });
  }
}

function factoryDependency(entry: unknown): { token: unknown; optional: boolean } {
  if (entry && typeof entry === 'object' && 'token' in entry) return { token: entry.token, optional: 'optional' in entry && entry.optional === true };
  return { token: entry, optional: false };
}

/** Constructor parameters (an @Inject token, else the declared type) and injected properties, as Nest resolves them. */
function classDependencies(metatype: object): Array<{ token: unknown; optional: boolean }> {
  const tokens: unknown[] = [...(Reflect.getMetadata(PARAMTYPES, metatype) ?? [])];
  const declared: Array<{ index: number; param: unknown }> = Reflect.getMetadata(SELF_DECLARED_DEPS, metatype) ?? [];
  for (const { index, param } of declared) tokens[index] = param;
  const optional: number[] = Reflect.getMetadata(OPTIONAL_DEPS, metatype) ?? [];
  const params = [...tokens].map((token, index) => ({ token, optional: optional.includes(index) }));
  const properties: Array<{ key: string | symbol; type: unknown }> = Reflect.getMetadata(PROPERTY_DEPS, metatype) ?? [];
  const optionalKeys: Array<string | symbol> = Reflect.getMetadata(OPTIONAL_PROPERTY_DEPS, metatype) ?? [];
  return [...params, ...properties.map((p) => ({ token: p.type, optional: optionalKeys.includes(p.key) }))];
}
