import { DynamicModule, Global, Module } from '@nestjs/common';
import { LifecycleService } from '../common/lifecycle.service';
import { AppConfig } from './app-config';

/** The validated configuration and the replica's lifecycle state, available everywhere. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: CoreModule,
      providers: [{ provide: AppConfig, useValue: config }, LifecycleService],
      exports: [AppConfig, LifecycleService],
    };
  }
}
