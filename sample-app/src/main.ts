import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { mikroOrmVersion } from 'nestjs-dbmanager';
import { AppModule } from './app.module';

async function main(): Promise<void> {
  const configPath = process.env.DBM_CONFIG ?? 'sample-app/config.yaml';
  const app = await NestFactory.create(AppModule.register(configPath));
  // SIGTERM/SIGINT close every pool (onApplicationShutdown), then exit 0; a failed shutdown exits 1.
  app.enableShutdownHooks([], { useProcessExit: true });
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  // The bound port, so PORT=0 (any free port) prints usable URLs.
  const { port } = app.getHttpServer().address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  // The query builder is Kysely on MikroORM 7 and Knex on 6; the other one answers 400.
  const builder = mikroOrmVersion().major === 7 ? 'kysely' : 'knex';
  const urls = [
    '/health',
    '/health/live',
    '/health/ready',
    '/health/primary',
    '/metrics',
    '/stats',
    '/connections',
    `/connections/primary/em|${builder}|native`,
    '/connections/primary/hold/2000',
    '/notes  (GET; POST {"text": "…"})',
    '/reports/summary',
  ];
  new Logger('SampleApp').log(`listening on ${base} with ${configPath}:\n${urls.map((url) => `  ${base}${url}`).join('\n')}`);
}

main().catch((error: unknown) => {
  new Logger('SampleApp').error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
