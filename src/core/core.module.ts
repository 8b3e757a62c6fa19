import { DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { LifecycleService } from './lifecycle.service';

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
