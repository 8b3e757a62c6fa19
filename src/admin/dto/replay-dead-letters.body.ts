import { ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';

/** A full date and time with a zone (ISO-8601 also allows forms like 20260101 or 2026-W01). */
export const TIMESTAMP_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)$/;

/** Filters combine (AND); only open dead letters are replayed, oldest first. */
export class ReplayDeadLettersBody {
  @ApiPropertyOptional({ type: [String], format: 'uuid', maxItems: 1000 })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true, message: 'each of ids must be a dead letter id (a UUID)' })
  ids?: string[];

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(255)
  event_type?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'dead-lettered at or after' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'failed_after must be an ISO-8601 date-time with a zone' })
  @Matches(TIMESTAMP_WITH_ZONE, { message: 'failed_after must be an ISO-8601 date-time with a zone' })
  failed_after?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'dead-lettered before' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'failed_before must be an ISO-8601 date-time with a zone' })
  @Matches(TIMESTAMP_WITH_ZONE, { message: 'failed_before must be an ISO-8601 date-time with a zone' })
  failed_before?: string;

  @ApiPropertyOptional({ default: false, description: 'count what would be replayed, change nothing' })
  @IsOptional()
  @IsBoolean()
  dry_run?: boolean;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 100, description: 'at most this many per call' })
  @IsOptional()
  @IsInt({ message: 'limit must be an integer from 1 to 1000' })
  @Min(1, { message: 'limit must be an integer from 1 to 1000' })
  @Max(1000, { message: 'limit must be an integer from 1 to 1000' })
  limit?: number;
}
