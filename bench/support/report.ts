import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { mikroOrm } from '../../lib/mikro-orm-version';
import { renderTable, type Table } from './table';

/** The machine a run happened on, for the header of RESULTS.md. */
export function machine(): Record<string, string> {
  return {
    CPUs: `${availableParallelism()} (\`nproc\`)`,
    'CPU model': cpus()[0]?.model.trim() ?? 'unknown',
    lscpu: lscpu(),
    RAM: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    Node: process.version,
    OS: `${process.platform} ${process.arch}`,
  };
}

/** The lines of `lscpu` that say what the CPUs are, or why there are none. */
function lscpu(): string {
  try {
    const wanted = /^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|CPU max MHz|Hypervisor vendor|L3 cache):/;
    const lines = execFileSync('lscpu', { encoding: 'utf8' }).split('\n').filter((line) => wanted.test(line));
    return lines.map((line) => line.replace(/\s+/g, ' ').trim()).join('; ');
  } catch (error) {
    return `lscpu failed: ${String(error)}`;
  }
}

/** The 1-minute load average, as `uptime` shows it. */
export function load(): string {
  return loadavg()[0]!.toFixed(2);
}

/** Collects what each section measured; prints it as it comes and writes it all to RESULTS.md at the end. */
export class Report {
  private readonly parts: string[] = [];
  private readonly summaryRows: string[][] = [];

  /** One line of the summary table at the top of RESULTS.md: measure, ours, reference, comparison. */
  summary(measure: string, ours: string, reference: string, comparison: string): void {
    this.summaryRows.push([measure, ours, reference, comparison]);
  }

  /** The summary table (also printed at the end of the run). */
  summaryTable(): string {
    return renderTable({ headers: ['measure', 'ours', 'reference', 'ours vs reference'], rows: this.summaryRows });
  }

  section(title: string, intro?: string): void {
    this.add(`## ${title}`);
    if (intro) this.add(intro);
  }

  table(table: Table): void {
    this.add(renderTable(table));
  }

  note(text: string): void {
    this.add(text);
  }

  /**
   * Writes this run as the part of RESULTS.md for the running MikroORM major (between its markers), keeping the other
   * leg's part as it is.
   */
  write(path: string, header: { command: string; startedAt: Date; totalMs: number; settings: string; loadBefore: string }): void {
    const { major, version } = mikroOrm();
    const info = {
      ...machine(),
      'MikroORM': version,
      Date: header.startedAt.toISOString(),
      Command: `\`${header.command}\``,
      'Load (1-min average, `uptime`)': `${header.loadBefore} at the start, ${load()} at the end`,
      'Total runtime': `${(header.totalMs / 1000).toFixed(0)} s (after compiling with tsc)`,
    };
    const part = [
      `<!-- mikro-orm-${major} -->`,
      `# MikroORM ${major} leg`,
      '',
      ...Object.entries(info).map(([k, v]) => `- ${k}: ${v}`),
      `- Settings: ${header.settings}`,
      '',
      `## Summary (MikroORM ${major})`,
      '',
      this.summaryTable(),
      '',
      this.parts.join('\n\n'),
      `<!-- /mikro-orm-${major} -->`,
    ].join('\n');
    const previous = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const parts = new Map<number, string>();
    for (const m of [7, 6]) {
      const found = new RegExp(`<!-- mikro-orm-${m} -->[\\s\\S]*?<!-- /mikro-orm-${m} -->`).exec(previous);
      if (found) parts.set(m, found[0]);
    }
    parts.set(major, part);
    // A hand-written reading of the runs (targets met or not, and why) between these markers survives a new run.
    const notes = /<!-- notes -->[\s\S]*?<!-- \/notes -->/.exec(previous)?.[0];
    // So does the Tenants section, written by hand from `npm run bench:tenants` (its own harness, bench/tenants.ts).
    const tenants = /<!-- tenants -->[\s\S]*?<!-- \/tenants -->/.exec(previous)?.[0];
    // And the before/after section, written by `npm run bench:before-after` (bench/run-before-after.ts).
    const beforeAfter = /<!-- before-after -->[\s\S]*?<!-- \/before-after -->/.exec(previous)?.[0];
    const lines = [
      '# Benchmark results',
      '',
      'Written by `npm run bench` (MikroORM 7, Node 24) and `npm run bench:mikro-orm-6` (MikroORM 6.6, the system Node 20),',
      'each into its own part below (bench/run.ts); every number in a part is from that one run. `npm run bench:before-after`',
      '(issue 13 before and after, MikroORM 6.6) writes the last part (bench/run-before-after.ts).',
      '',
      ...(notes ? [notes, ''] : []),
      ...[7, 6].map((m) => parts.get(m) ?? `<!-- mikro-orm-${m} -->\n# MikroORM ${m} leg\n\nNot run yet.\n<!-- /mikro-orm-${m} -->`).join('\n\n').split('\n'),
      '',
      ...(tenants ? [tenants, ''] : []),
      ...(beforeAfter ? [beforeAfter, ''] : []),
    ];
    writeFileSync(path, lines.join('\n'));
  }

  private add(text: string): void {
    this.parts.push(text);
    console.log(`\n${text}`);
  }
}

/**
 * Writes `part` into RESULTS.md between `<!-- marker -->` and `<!-- /marker -->`, in place of what stood there, or at
 * the end; the rest of the file stays as it is (Report.write keeps the part across `npm run bench`).
 */
export function writeMarked(path: string, marker: string, part: string): void {
  const block = `<!-- ${marker} -->\n${part.trim()}\n<!-- /${marker} -->`;
  const previous = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const found = new RegExp(`<!-- ${marker} -->[\\s\\S]*?<!-- /${marker} -->`).exec(previous);
  const next = found ? previous.replace(found[0], () => block) : `${previous.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}

/** Where a bench run writes its part: bench/RESULTS.md of this repository, or DBM_BENCH_RESULTS (the MikroORM 6 leg). */
export function resultsPath(): string {
  return process.env.DBM_BENCH_RESULTS ?? join(__dirname, '..', '..', '..', '..', 'bench', 'RESULTS.md');
}

/**
 * Runs a bench's main and exits with its outcome: explicitly, as a bench may leave handles open by design (the
 * anchor's failed startup in section 5 keeps its healthy context's pool).
 */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
