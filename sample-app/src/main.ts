import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

async function main(): Promise<void> {
  const configPath = process.env.DBM_CONFIG ?? 'sample-app/config.yaml';
  const app = await NestFactory.create(AppModule.register(configPath));
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  new Logger('SampleApp').log(
    `listening with ${configPath}: ${base}/health  ${base}/health/primary  ${base}/metrics  ${base}/stats  ` +
      `${base}/connections  ${base}/connections/primary/em|knex|native  ${base}/notes  ${base}/reports/summary`,
  );
}

main().catch((error: unknown) => {
  new Logger('SampleApp').error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
