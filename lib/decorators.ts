import { Inject } from '@nestjs/common';
import { getConnectionToken, getEntityManagerToken } from './tokens';

/** Injects a `DbConnection` by name; no name = the connection that is default at startup. */
export const InjectConnection = (name?: string): ParameterDecorator & PropertyDecorator => Inject(getConnectionToken(name));

/** Injects a connection's EntityManager (request-scoped through MikroORM's RequestContext); no name = the default's. */
export const InjectEntityManager = (name?: string): ParameterDecorator & PropertyDecorator => Inject(getEntityManagerToken(name));
