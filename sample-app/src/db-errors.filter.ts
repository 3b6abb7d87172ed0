import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus } from '@nestjs/common';
import { ConnectionNotFoundError, NotMongoDatabaseError, NotSqlDatabaseError, QueryBuilderUnavailableError } from 'nestjs-dbmanager';

type CallerError = ConnectionNotFoundError | NotSqlDatabaseError | NotMongoDatabaseError | QueryBuilderUnavailableError;

/** The caller's mistakes, not the server's: an unknown connection is a 404, an access path its type (or MikroORM major) lacks a 400. */
@Catch(ConnectionNotFoundError, NotSqlDatabaseError, NotMongoDatabaseError, QueryBuilderUnavailableError)
export class DbErrorsFilter implements ExceptionFilter<CallerError> {
  catch(error: CallerError, host: ArgumentsHost): void {
    const statusCode = error instanceof ConnectionNotFoundError ? HttpStatus.NOT_FOUND : HttpStatus.BAD_REQUEST;
    host
      .switchToHttp()
      .getResponse<{ status(code: number): { json(body: unknown): void } }>()
      .status(statusCode)
      .json({ statusCode, error: error.name, connection: error.connectionName, message: error.message });
  }
}
