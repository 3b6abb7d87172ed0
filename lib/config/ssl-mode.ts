import { DbManagerConfigError } from '../errors';
import { SSL_MODES } from './config-schema';

/**
 * The end of every driver's sslmode mapping: a value none of them knows (a config built by hand, past the parser) is
 * refused, so an unexpected value can never mean "no TLS". The value is not quoted: it may have come out of a DSN.
 */
export function unsupportedSslMode(connectionName: string): never {
  throw new DbManagerConfigError(
    [{ path: `connections.${connectionName}.sslmode`, message: `must be one of ${SSL_MODES.join(', ')} (lowercase, as libpq takes them)` }],
    connectionName,
  );
}
