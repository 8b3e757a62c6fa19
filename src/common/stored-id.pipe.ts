import { PipeTransform } from '@nestjs/common';
import { AppError, ErrorCode } from './app-error';

const MAX_ID_LENGTH = 255;

/**
 * A path id of something stored (a customer, a user, an event): 1 to 255 characters, no NUL
 * (PostgreSQL text cannot hold one). Any other id was never stored, so it is 404, not a query.
 */
export class StoredIdPipe implements PipeTransform<string, string> {
  constructor(private readonly what: string) {}

  transform(value: string): string {
    if (value.length === 0 || value.length > MAX_ID_LENGTH) {
      throw new AppError(
        ErrorCode.NotFound,
        `No ${this.what} with an id of ${value.length} characters is known (at most ${MAX_ID_LENGTH}).`,
      );
    }
    if (value.includes('\0')) {
      throw new AppError(ErrorCode.NotFound, `No ${this.what} with a NUL character in its id is known.`);
    }
    return value;
  }
}
