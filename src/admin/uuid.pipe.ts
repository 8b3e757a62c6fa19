import { Injectable, PipeTransform } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { UUID } from '../common/cursor';

/** Dead-letter ids are UUIDs; anything else is 400 invalid_request before it reaches SQL. */
@Injectable()
export class UuidPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!UUID(value)) {
      throw new AppError(ErrorCode.InvalidRequest, 'The dead letter id must be a UUID.');
    }
    return value.toLowerCase();
  }
}
