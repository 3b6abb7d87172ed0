import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { DbManagerModule, dbManagerYamlConfig } from 'nestjs-dbmanager';
import { DbController } from './db.controller';
import { HealthController } from './health.controller';
import { Note } from './note.entity';
import { NotesService } from './notes.service';
import { ReportsService } from './reports.service';

/** Entity classes cannot live in YAML: they are added to the primary connection's MikroORM options here. */
function withEntities(raw: Record<string, any>): Record<string, unknown> {
  const primary = raw.connections?.primary ?? {};
  const mikroOrm = primary.mikro_orm ?? primary.mikroOrm ?? {};
  delete primary.mikroOrm;
  return { ...raw, connections: { ...raw.connections, primary: { ...primary, mikro_orm: { ...mikroOrm, entities: [Note] } } } };
}

// Evaluated once per process: PrometheusModule.register() collects the default metrics, which may be registered only once.
const prometheus = PrometheusModule.register();

@Module({})
export class AppModule {
  /** The app on the YAML config at `configPath` (relative to the working directory). */
  static register(configPath: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [dbManagerYamlConfig(configPath)] }),
        DbManagerModule.forRootAsync({
          connectionNames: ['primary', 'analytics'],
          inject: [ConfigService],
          useFactory: (config: ConfigService) => withEntities(config.getOrThrow('dbmanager')),
        }),
        TerminusModule,
        // Serves GET /metrics: the library's pool metrics beside the process' default ones.
        prometheus,
      ],
      controllers: [DbController, HealthController],
      providers: [NotesService, ReportsService],
    };
  }
}
