import type { MikroORM } from '@mikro-orm/core';
import { DbManagerError } from '../errors';

type Convert = (exception: Error) => Error;

/**
 * MikroORM turns every error an EntityManager call meets into a `DriverException` that copies the message but not the
 * class. Ours already say what happened and what to do (`AcquireTimeoutError`, `ConnectionClosedError`), so they pass
 * through as they are, and once the connection is closed whatever the driver throws becomes `closedError`'s error.
 * The converter belongs to this ORM instance's platform alone, so other MikroORM instances are untouched.
 */
export function keepOurErrorsThroughTheOrm(orm: MikroORM, closedError: (cause: unknown) => Error | undefined): void {
  const converter = orm.em.getDriver().getPlatform().getExceptionConverter() as unknown as { convertException: Convert };
  const convert: Convert = converter.convertException.bind(converter);
  converter.convertException = (exception) => (exception instanceof DbManagerError ? exception : (closedError(exception) ?? convert(exception)));
}
