import type { FactoryProvider, Provider } from '@nestjs/common';

/**
 * @willsoto/nestjs-prometheus. Its `make*Provider` factories take PrometheusModule's options as their first argument,
 * to apply `customMetricPrefix`; our metric names are a contract, so the factory is called with none. That calling
 * convention is not documented: a provider that does not look like one is a startup error naming the fix.
 */
export function unprefixed(provider: Provider): FactoryProvider {
  const made = provider as Partial<FactoryProvider>;
  if (typeof made.useFactory !== 'function' || made.provide === undefined) {
    throw new Error('@willsoto/nestjs-prometheus returned a metric provider of an unknown shape: install a version this library supports (^6)');
  }
  const factory = made.useFactory;
  return { provide: made.provide, useFactory: () => factory(undefined), inject: [] };
}
