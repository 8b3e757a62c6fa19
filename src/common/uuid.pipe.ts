import { ParseUUIDPipe } from '@nestjs/common';
import { AppError, ErrorCode } from './app-error';

/** A path id that must be a UUID; anything else is 400 invalid_request before it reaches SQL. */
export function uuidPipe(what: string): ParseUUIDPipe {
  return new ParseUUIDPipe({
    exceptionFactory: () => new AppError(ErrorCode.InvalidRequest, `The ${what} id must be a UUID.`),
  });
}
