import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { AdminRequest } from '../common/admin-token.guard';

/** The holder of the bearer token (set by AdminTokenGuard). */
export const Actor = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string =>
    context.switchToHttp().getRequest<AdminRequest>().adminActor ?? 'unknown',
);
