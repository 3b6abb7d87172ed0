import { Inject } from '@nestjs/common';
import { recordInjectedName } from './injected-names';
import { getConnectionToken, getEntityManagerToken, getRepositoryToken, type RepositoryTokenSource } from './tokens';

/**
 * Injects a `DbConnection` by name; no name = the connection that is default at startup.
 * The name gets its token without listing it in `connectionNames`.
 */
export function InjectConnection(name?: string): ParameterDecorator & PropertyDecorator {
  recordInjectedName(name);
  return Inject(getConnectionToken(name));
}

/** Injects a connection's EntityManager (request-scoped through MikroORM's RequestContext); no name = the default's. */
export function InjectEntityManager(name?: string): ParameterDecorator & PropertyDecorator {
  recordInjectedName(name);
  return Inject(getEntityManagerToken(name));
}

/** Injects the repository `DbManagerModule.forFeature([entity], name)` registered; no name = the default connection's. */
export function InjectRepository(entity: RepositoryTokenSource, name?: string): ParameterDecorator & PropertyDecorator {
  recordInjectedName(name);
  return Inject(getRepositoryToken(entity, name));
}
