
/**
 * Run by memory.ts in a fresh process: `node --expose-gc memory-child.js <variant> <url> <n>`. Loads what the variant
 * needs, opens and closes one connection (warm-up), opens n idle connections, prints one JSON line with RSS/heap
 * before and after, then waits to be killed.
 */
export type MemoryVariant = 'ours' | 'mikroorm' | 'pg';

export interface MemoryReading {
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
}

async function settled(): Promise<{ rss: number; heap: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heap: heapUsed };
}

/** How a variant opens n connections and closes them again. */
interface Opener {
  open(n: number): Promise<unknown>;
  close(held: unknown): Promise<void>;
}

/** Loads only what the variant needs, so "before" is that variant's own footprint. */
async function load(variant: MemoryVariant, url: string): Promise<Opener> {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `db${i + 1}`);
  switch (variant) {
    case 'ours': {
      const { Logger } = await import('@nestjs/common');
      const { DbManager } = await import('../lib/index.js');
      Logger.overrideLogger(false);
      return {
        // Each connection connects with a ping, which leaves one idle connection in its pool.
        open: (n) => DbManager.create({ connections: Object.fromEntries(names(n).map((name) => [name, { type: 'postgres', dsn: url }])) }),
        close: (held) => (held as InstanceType<typeof DbManager>).close(),
      };
    }
    case 'mikroorm': {
      const { MikroORM } = await import('@mikro-orm/core');
      const { PostgreSqlDriver } = await import('@mikro-orm/postgresql');
      return {
        open: (n) =>
          Promise.all(
            names(n).map(async (name) => {
              const orm = await MikroORM.init({ driver: PostgreSqlDriver, clientUrl: url, contextName: name, discovery: { warnWhenNoEntities: false } });
              await orm.em.getConnection().execute('select 1');
              return orm;
            }),
          ),
        close: async (held) => void (await Promise.all((held as InstanceType<typeof MikroORM>[]).map((orm) => orm.close(true)))),
      };
    }
    case 'pg': {
      const { default: pg } = await import('pg');
      return {
        open: (n) =>
          Promise.all(
            names(n).map(async () => {
              const client = new pg.Client({ connectionString: url });
              await client.connect();
              return client;
            }),
          ),
        close: async (held) => void (await Promise.all((held as InstanceType<typeof pg.Client>[]).map((client) => client.end()))),
      };
    }
  }
}

async function main(): Promise<void> {
  const [variant, url, count] = process.argv.slice(2) as [MemoryVariant, string, string];
  const opener = await load(variant, url);
  // One connection opened and closed first: one-time initialisation is not charged to the 50 connections.
  await opener.close(await opener.open(1));
  const before = await settled();
  const held = await opener.open(Number(count));
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await settled();
  const reading: MemoryReading = { rssBefore: before.rss, rssAfter: after.rss, heapBefore: before.heap, heapAfter: after.heap };
  process.stdout.write(`${JSON.stringify(reading)}\n`);
  // Held until the parent has counted the server's connections and kills this process.
  setInterval(() => held, 60_000);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
