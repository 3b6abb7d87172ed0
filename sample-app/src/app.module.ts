import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { DbManagerModule, dbManagerYamlConfig } from 'nestjs-dbmanager';
import { DbController } from './db.controller';
import { HealthController } from './health.controller';
import { NotesModule } from './notes.module';
import { ReportsService } from './reports.service';

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
        // No connectionNames: @InjectConnection('analytics') registers its name, and entities come from forFeature.
        DbManagerModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService) => config.getOrThrow('dbmanager'),
        }),
        NotesModule,
        TerminusModule,
        // Serves GET /metrics: the library's pool metrics beside the process' default ones.
        prometheus,
      ],
      controllers: [DbController, HealthController],
      providers: [ReportsService],
    };
  }
}
