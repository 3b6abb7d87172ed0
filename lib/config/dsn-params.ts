import { factsOf } from '../drivers/database-facts';
import type { ConfigIssue } from '../errors';
import type { DatabaseType } from '../vocabulary';
import { checkValue, isProblem } from './check-value';
import { appliesTo, CONNECTION_FIELDS, type FieldSpec, SSL_MODES, type SslMode, TLS_REQUIRED_MODES, typesWith, UNREAD_TLS_PARAMS } from './config-schema';

/** What a DSN's query says: values of the fields its parameters stand for, and the parameters left for the driver. */
export interface DsnParamValues {
  /** camelCase field → value, checked exactly as the field itself is. */
  fields: Record<string, unknown>;
  /** Every other parameter (the driver passes on those it knows and warns about the rest). */
  rest: Record<string, string>;
}

/** A field that a DSN parameter stands for, under the parameter name this database gives it. */
interface StandIn {
  key: string;
  spec: FieldSpec;
  param: string;
}

/** The fields a DSN parameter may stand for on `type`, each with its parameter's name there. */
function standInsFor(type: DatabaseType): StandIn[] {
  const renamed = factsOf(type).dsnParams?.renamed ?? {};
  return Object.entries<FieldSpec>(CONNECTION_FIELDS).flatMap(([key, spec]) => {
    const param = renamed[key] ?? spec.dsnParam;
    return param === undefined ? [] : [{ key, spec, param }];
  });
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
  const rules = factsOf(type).dsnParams ?? {};
  const sameName = rules.caseInsensitive ? (a: string, b: string) => a.toLowerCase() === b.toLowerCase() : (a: string, b: string) => a === b;
  const standIns = standInsFor(type);
  const switches = rules.tlsSwitches?.values ?? {};
  const known = [...standIns.map((s) => s.param), ...Object.keys(switches)];
  const fields: Record<string, unknown> = {};
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    const standIn = standIns.find((s) => sameName(s.param, name));
    if (standIn) {
      const { key, spec, param } = standIn;
      if (!appliesTo(key, spec, type)) {
        issues.push({ path, message: `query parameter ${param} does not apply to a ${type} connection (only to ${typesWith(key).join(', ')})` });
        continue;
      }
      const checked = checkValue(spec, value, true);
      if (isProblem(checked)) issues.push({ path, message: `query parameter ${param} ${checked.problem}` });
      // MongoDB's authSource and authsource are one option: given both ways, they must agree.
      else if (Object.hasOwn(fields, key) && fields[key] !== checked) issues.push({ path, message: `has the query parameter ${param} twice, with different values: keep one` });
      else fields[key] = checked;
      continue;
    }
    if (Object.hasOwn(switches, name)) {
      const checked = checkValue({ kind: 'string', oneOf: switches[name] }, value, true);
      if (isProblem(checked)) issues.push({ path, message: `query parameter ${name} ${checked.problem}` });
      else rest[name] = value;
      continue;
    }
    const meant = known.find((p) => loosely(p) === loosely(name));
    if (meant) {
      issues.push({ path, message: `has a query parameter spelled like ${meant} but not exactly, which would be ignored (parameter names are case-sensitive): write ${meant}` });
    } else if (!rules.readsTlsParams && (UNREAD_TLS_PARAMS as readonly string[]).includes(loosely(name))) {
      const named = rules.tlsSwitches?.named ?? 'sslmode';
      issues.push({
        path,
        message: `has a TLS query parameter that this library does not read, so the connection would go without TLS: use ${named} instead (sslmode: ${SSL_MODES.slice(0, -1).join(', ')} or ${SSL_MODES.at(-1)})`,
      });
    } else {
      rest[name] = value;
    }
  }
  return { fields, rest };
}

/**
 * The connection's sslmode, where a database's own DSN switches (SQL Server's `encrypt`) may set it or contradict it
 * (each contradiction an issue at `path`).
 */
export function resolveSslMode(type: DatabaseType, mode: SslMode | undefined, params: Record<string, string>, path: string, issues: ConfigIssue[]): SslMode | undefined {
  const switches = factsOf(type).dsnParams?.tlsSwitches;
  if (!switches) return mode;
  const resolved = switches.resolve({ mode, tlsRequired: mode !== undefined && TLS_REQUIRED_MODES.includes(mode) }, params);
  for (const message of resolved.contradictions) issues.push({ path, message });
  return resolved.sslmode;
}
