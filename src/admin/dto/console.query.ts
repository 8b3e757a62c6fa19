import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';

export const STATS_WINDOWS = ['1h', '24h', '7d'] as const;
export type StatsWindow = (typeof STATS_WINDOWS)[number];

export class StatsQuery {
  @ApiPropertyOptional({
    enum: STATS_WINDOWS,
    default: '1h',
    description: '1h: 60 one-minute buckets; 24h: 96 quarter-hours; 7d: 168 hours',
  })
  @IsOptional()
  @IsIn(STATS_WINDOWS, { message: 'window must be one of 1h, 24h, 7d' })
  window: StatsWindow = '1h';
}

export class ReprocessQuery {
  @ApiPropertyOptional({
    enum: ['true', 'false'],
    description: 'true: run the handler in a transaction that is rolled back and list the rows it would change',
  })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'dry_run must be true or false' })
  dry_run?: 'true' | 'false';
}

export class EventQuery {
  @ApiPropertyOptional({ enum: ['payload'], description: 'payload: add the event as received (`payload`)' })
  @IsOptional()
  @IsIn(['payload'], { message: 'include must be payload' })
  include?: 'payload';
}
