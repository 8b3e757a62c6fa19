import { ArgumentMetadata, ValidationPipe } from '@nestjs/common';

/**
 * The global validation pipe. An empty query value (`?event_type=&limit=`, as SPEC writes its
 * templates and as scripts that fill them send) means "not set": it is dropped before validation,
 * so that defaults apply instead of `limit=0` failing or `event_type=''` matching nothing.
 */
export class AppValidationPipe extends ValidationPipe {
  constructor() {
    super({ whitelist: true, forbidNonWhitelisted: true, transform: true });
  }

  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'query' && value !== null && typeof value === 'object') {
      value = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== ''));
    }
    return super.transform(value, metadata) as Promise<unknown>;
  }
}
