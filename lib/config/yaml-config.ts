import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { DbManagerConfigError } from '../errors';
import { isPlainObject } from './env-interpolation';

/**
 * A `@nestjs/config` factory: reads a YAML file (path relative to the working directory) and returns
 * `{ dbmanager: <the raw object> }`, to be validated by the module (or `parseDbManagerConfig`).
 */
export function dbManagerYamlConfig(path: string): () => { dbmanager: Record<string, unknown> } {
  return () => ({ dbmanager: readDbManagerYaml(path) });
}

/** Reads the `dbmanager:` section of a YAML file (or the whole file when it has no such root). */
export function readDbManagerYaml(path: string): Record<string, unknown> {
  const file = resolve(process.cwd(), path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new DbManagerConfigError([{ path: file, message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` }]);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new DbManagerConfigError([{ path: file, message: `is not valid YAML: ${(error as Error).message.split('\n')[0]}` }]);
  }
  const section = isPlainObject(doc) && Object.hasOwn(doc, 'dbmanager') ? doc.dbmanager : doc;
  if (!isPlainObject(section)) {
    throw new DbManagerConfigError([{ path: `${file}: dbmanager`, message: 'must be a mapping with a "connections" map' }]);
  }
  return section;
}
