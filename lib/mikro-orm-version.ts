/**
 * Which MikroORM major runs, read from `@mikro-orm/core`'s package.json (no code of it is loaded here), and the guard
 * that stops MikroORM 7 on a Node.js too old for it before anything native loads: better-sqlite3 13 crashes the
 * process (a segmentation fault) on Node 20.
 */

/** A MikroORM major this library serves. */
export type MikroOrmMajor = 6 | 7;

/** MikroORM 7 requires Node.js ≥ 22.17. */
const MIKRO_ORM_7_NODE = [22, 17] as const;

let detected: { major: MikroOrmMajor; version: string } | undefined;

/** The installed MikroORM's major and version; throws when `@mikro-orm/core` is missing or of another major. */
export function mikroOrm(): { major: MikroOrmMajor; version: string } {
  if (!detected) {
    let version: string;
    try {
      version = (require('@mikro-orm/core/package.json') as { version: string }).version;
    } catch {
      throw new Error('nestjs-dbmanager needs @mikro-orm/core: npm i -E @mikro-orm/core@7.2.1 (or 6.6.16 on Node.js 20)');
    }
    const major = Number(version.split('.')[0]);
    if (major !== 6 && major !== 7) throw new Error(`nestjs-dbmanager supports MikroORM 6.6 and 7, not @mikro-orm/core ${version}`);
    detected = { major, version };
  }
  return detected;
}

/** Fails with a clear message when MikroORM 7 is installed on a Node.js older than it supports. */
export function assertNodeFitsMikroOrm(nodeVersion = process.versions.node): void {
  let orm: { major: MikroOrmMajor; version: string };
  try {
    orm = mikroOrm();
  } catch {
    return; // no MikroORM at all: the first connection says which package to install
  }
  const [major, minor] = nodeVersion.split('.').map(Number);
  const [needMajor, needMinor] = MIKRO_ORM_7_NODE;
  if (orm.major === 7 && (major < needMajor || (major === needMajor && minor < needMinor))) {
    throw new Error(
      `MikroORM 7 needs Node ≥ ${needMajor}.${needMinor}, and this is Node ${nodeVersion} (@mikro-orm/core ${orm.version} is installed). ` +
        'Run on Node.js 22.17 or newer, or install MikroORM 6.6 (every @mikro-orm/* package at exactly 6.6.16).',
    );
  }
}
