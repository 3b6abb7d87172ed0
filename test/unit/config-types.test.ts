import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { MIKRO_ORM_MAJOR } from '../support/mikro-orm-leg';

const ROOT = join(__dirname, '..', '..');
const FIXTURE = join(ROOT, 'test/types/config-input.ts');
const MARKER = /\/\/ @ts-expect-error (.+)$/;

/** The repository's compiler options (tsconfig.json), so the fixture compiles here as `npm run typecheck` compiles it. */
function compilerOptions(): ts.CompilerOptions {
  const file = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  return { ...ts.parseJsonConfigFileContent(file.config, ts.sys, ROOT).options, noEmit: true };
}

/** Compiles `text` as the fixture (the rest of the program from disk); its diagnostics, by 1-based line. */
function diagnosticsOf(text: string, oldProgram?: ts.Program): { program: ts.Program; byLine: Map<number, string[]> } {
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === FIXTURE ? text : readFile(name));
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError) =>
    name === FIXTURE ? ts.createSourceFile(name, text, version) : getSourceFile(name, version, onError);
  const program = ts.createProgram({ rootNames: [FIXTURE], options, host, oldProgram });
  const byLine = new Map<number, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : 'program';
    if (d.file?.fileName !== FIXTURE) throw new Error(`${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    const line = d.file.getLineAndCharacterOfPosition(d.start!).line + 1;
    byLine.set(line, [...(byLine.get(line) ?? []), ts.flattenDiagnosticMessageText(d.messageText, '\n')]);
  }
  return { program, byLine };
}

describe(`config input types (compiled against MikroORM ${MIKRO_ORM_MAJOR}'s types)`, () => {
  const source = readFileSync(FIXTURE, 'utf8');
  const lines = source.split('\n');
  const expected = lines.flatMap((line, i) => {
    const marker = MARKER.exec(line);
    return marker ? [{ line: i + 2, words: marker[1] }] : [];
  });

  it('what must compile compiles, and each marked line is an error (no marker unused)', { timeout: 120_000 }, () => {
    expect(expected.length).toBeGreaterThan(15);
    const { byLine } = diagnosticsOf(source);
    expect([...byLine.entries()]).toEqual([]);
  });

  it('a camelCase key shows its field table TSDoc in an editor (the text config.schema.json gives YAML)', { timeout: 120_000 }, () => {
    const { program } = diagnosticsOf(source);
    const checker = program.getTypeChecker();
    const types = program.getSourceFile(join(ROOT, 'lib/config/config.types.ts'))!;
    const docOf = (alias: string, key: string) => {
      const symbol = checker.getSymbolsInScope(types, ts.SymbolFlags.TypeAlias).find((s) => s.name === alias)!;
      const property = checker.getPropertyOfType(checker.getTypeAtLocation(symbol.declarations![0]), key)!;
      return ts.displayPartsToString(property.getDocumentationComment(checker));
    };
    expect(docOf('DbManagerOptionsInput', 'retryDelay')).toBe('First backoff delay (full jitter, doubling per attempt), at least 10ms.');
    expect(docOf('PoolOptionsInput', 'maxOpenConns')).toBe('Most connections the pool opens (MongoDB: `maxPoolSize`).');
    expect(docOf('ConnectionConfig', 'applicationName')).toMatch(/^The name the server shows/);
  });

  it('each marked line fails for the reason its marker names', { timeout: 120_000 }, () => {
    // The same file with the markers turned into plain comments: each error now shows, with its message.
    const unmarked = lines.map((line) => line.replace('// @ts-expect-error', '// expected:')).join('\n');
    const { byLine } = diagnosticsOf(unmarked);
    for (const { line, words } of expected) {
      const messages = byLine.get(line) ?? [];
      expect(messages.join('\n'), `line ${line}: ${lines[line - 1].trim()}`).toContain(words);
    }
    // No error anywhere but on a marked line.
    const marked = new Set(expected.map((e) => e.line));
    expect([...byLine.keys()].filter((line) => !marked.has(line))).toEqual([]);
  });
});
