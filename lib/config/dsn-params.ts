import type { ConfigIssue } from '../errors';
import { checkValue, isProblem } from './check-value';
import type { DatabaseType } from './config.types';
import { CONNECTION_FIELDS, type FieldSpec, type SslMode, TDS_TLS_PARAMS, TLS_REQUIRED_MODES, UNREAD_TLS_PARAMS } from './config-schema';

/** What a DSN's query says: values of the fields its parameters stand for, and the parameters left for the driver. */
export interface DsnParamValues {
  /** camelCase field → value, checked exactly as the field itself is. */
  fields: Record<string, unknown>;
  /** Every other parameter (the driver passes on those it knows and warns about the rest). */
  rest: Record<string, string>;
}

function paramOf(spec: FieldSpec, type: DatabaseType): string | undefined {
  return spec.dsnParamByType?.[type] ?? spec.dsnParam;
}

/** Lowercase without `-` and `_`: how a near-miss spelling (`SSLMODE`, `ssl-mode`) is recognised. */
const loosely = (name: string) => name.toLowerCase().replace(/[-_]/g, '');

/**
 * Reads the query parameters of a DSN: each one that stands for a field is validated with that field's own accepted
 * values (a bad one is an issue at `path` naming them). A near-miss spelling of a known parameter, or a TLS switch
 * this library does not read, is an issue too: ignored, it would silently connect in plain text. Messages never
 * quote a value or name out of the DSN, which is a secret.
 */
export function readDsnParams(type: DatabaseType, params: Record<string, string>, path: string, issues: ConfigIssue[]): DsnParamValues {
  // MongoDB URI option names are case-insensitive, as its driver reads them; libpq's and the others' are not.
  const sameName = type === 'mongodb' ? (a: string, b: string) => a.toLowerCase() === b.toLowerCase() : (a: string, b: string) => a === b;
  const standing = CONNECTION_FIELDS.filter((spec) => paramOf(spec, type) !== undefined);
  const onlyInDsn = type === 'mssql' ? Object.keys(TDS_TLS_PARAMS) : [];
  const known = [...standing.map((spec) => paramOf(spec, type)!), ...onlyInDsn];
  const fields: Record<string, unknown> = {};
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    const spec = standing.find((s) => sameName(paramOf(s, type)!, name));
    if (spec) {
      const param = paramOf(spec, type)!;
      if (spec.appliesTo && !spec.appliesTo.includes(type)) {
        issues.push({ path, message: `query parameter ${param} does not apply to a ${type} connection (only to ${spec.appliesTo.join(', ')})` });
        continue;
      }
      const checked = checkValue(spec.type, value, true);
      if (isProblem(checked)) issues.push({ path, message: `query parameter ${param} ${checked.problem}` });
      // MongoDB's authSource and authsource are one option: given both ways, they must agree.
      else if (Object.hasOwn(fields, spec.key) && fields[spec.key] !== checked) issues.push({ path, message: `has the query parameter ${param} twice, with different values: keep one` });
      else fields[spec.key] = checked;
      continue;
    }
    const tlsParam = onlyInDsn.find((p) => p === name);
    if (tlsParam) {
      const checked = checkValue(TDS_TLS_PARAMS[tlsParam as keyof typeof TDS_TLS_PARAMS], value, true);
      if (isProblem(checked)) issues.push({ path, message: `query parameter ${tlsParam} ${checked.problem}` });
      else rest[name] = value;
      continue;
    }
    const meant = known.find((p) => loosely(p) === loosely(name));
    if (meant) {
      issues.push({ path, message: `has a query parameter spelled like ${meant} but not exactly, which would be ignored (parameter names are case-sensitive): write ${meant}` });
    } else if (type !== 'mongodb' && (UNREAD_TLS_PARAMS as readonly string[]).includes(loosely(name))) {
      const switches = type === 'mssql' ? 'sslmode (or encrypt and trustServerCertificate)' : 'sslmode';
      issues.push({
        path,
        message: `has a TLS query parameter that this library does not read, so the connection would go without TLS: use ${switches} instead (sslmode: disable, allow, prefer, require, verify-ca or verify-full)`,
      });
    } else {
      rest[name] = value;
    }
  }
  return { fields, rest };
}

/**
 * SQL Server: the DSN's `encrypt` / `trustServerCertificate` mean what `sslmode` means, so they must agree with it;
 * alone, `encrypt` sets it (`false` → disable; on, with a trusted certificate → require; on → verify-full), so a
 * server without TLS is refused instead of answered in plain text.
 */
export function tdsSslMode(sslmode: SslMode | undefined, params: Record<string, string>, path: string, issues: ConfigIssue[]): SslMode | undefined {
  const { encrypt, trustServerCertificate: trust } = params;
  if (sslmode === undefined) {
    if (encrypt === undefined) return undefined;
    if (encrypt === 'false') return 'disable';
    return trust === 'true' ? 'require' : 'verify-full';
  }
  const tls = TLS_REQUIRED_MODES.includes(sslmode);
  if (encrypt !== undefined && (encrypt !== 'false') !== tls) {
    issues.push({ path, message: `query parameter encrypt=${encrypt} contradicts sslmode "${sslmode}": say it in one place` });
  }
  if (trust !== undefined && tls && (trust === 'true') !== (sslmode === 'require')) {
    issues.push({
      path,
      message: `query parameter trustServerCertificate=${trust} contradicts sslmode "${sslmode}" (require trusts any certificate, verify-ca and verify-full check it): say it in one place`,
    });
  }
  return sslmode;
}
