import { DbManagerConfigError } from '../errors';
import { SSL_MODES, type SslMode } from './config-schema';

/**
 * The end of every driver's sslmode mapping: a value none of them knows (a config built by hand, past the parser) is
 * refused, so an unexpected value can never mean "no TLS". The value is not quoted: it may have come out of a DSN.
 */
function unsupportedSslMode(connectionName: string): never {
  throw new DbManagerConfigError(
    [{ path: `connections.${connectionName}.sslmode`, message: `must be one of ${SSL_MODES.join(', ')} (lowercase, as libpq takes them)` }],
    connectionName,
  );
}

/**
 * What an `sslmode` asks of TLS, for every driver alike: `unset` (the driver's own default), `off` (`disable`, and
 * `allow` / `prefer`, which no driver here can try and fall back from — we never downgrade silently, nor try TLS
 * unasked), or TLS required, with the server's certificate checked (`verify-ca`, `verify-full`) or not (`require`).
 * An unknown value is refused, never read as "no TLS".
 */
export function tlsDemand(sslmode: SslMode | undefined, connectionName: string): 'unset' | 'off' | { verifyCertificate: boolean } {
  switch (sslmode) {
    case undefined:
      return 'unset';
    case 'disable':
    case 'allow':
    case 'prefer':
      return 'off';
    case 'require':
      return { verifyCertificate: false };
    case 'verify-ca':
    case 'verify-full':
      return { verifyCertificate: true };
    default:
      return unsupportedSslMode(connectionName);
  }
}
