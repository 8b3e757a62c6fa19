import { ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import { AppError, ErrorCode } from './app-error';

/**
 * The global validation pipe, for queries and bodies (path ids have their own pipes). An empty
 * query value means "not set"; NUL is refused, as PostgreSQL text cannot hold it.
 */
export class AppValidationPipe extends ValidationPipe {
  constructor() {
    super({ whitelist: true, forbidNonWhitelisted: true, transform: true });
  }

  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'query' || metadata.type === 'body') {
      const field = fieldWithNul(value);
      if (field !== undefined) {
        throw new AppError(
          ErrorCode.InvalidRequest,
          `${field || `The ${metadata.type}`} must not contain a NUL character.`,
        );
      }
    }
    if (metadata.type === 'query' && value !== null && typeof value === 'object') {
      value = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== ''));
    }
    return super.transform(value, metadata) as Promise<unknown>;
  }
}

/** Where in `value` the first string (or key) holding a NUL character is, if any: `''` for `value` itself. */
function fieldWithNul(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') {
    return value.includes('\0') ? path : undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const itemPath = Array.isArray(value) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
      const field = key.includes('\0') ? itemPath : fieldWithNul(item, itemPath);
      if (field !== undefined) {
        return field;
      }
    }
  }
  return undefined;
}
