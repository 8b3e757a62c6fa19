import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsISO8601, IsOptional, Matches } from 'class-validator';
import { TIMESTAMP_WITH_ZONE } from './replay-dead-letters.body';

/** A reconciliation run over events `created` in [since, until]. */
export class ReconcileBody {
  @ApiPropertyOptional({
    format: 'date-time',
    description: 'from this creation time (at most 30 days ago); default: the checkpoint less 60 s',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'since must be an ISO-8601 date-time with a zone' })
  @Matches(TIMESTAMP_WITH_ZONE, { message: 'since must be an ISO-8601 date-time with a zone' })
  since?: string;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'up to this creation time (a later one is taken as now); default: now less RECONCILE_GRACE_SECONDS',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'until must be an ISO-8601 date-time with a zone' })
  @Matches(TIMESTAMP_WITH_ZONE, { message: 'until must be an ISO-8601 date-time with a zone' })
  until?: string;

  @ApiPropertyOptional({ default: false, description: 'count what would be recovered, store nothing' })
  @IsOptional()
  @IsBoolean({ message: 'dry_run must be true or false' })
  dry_run?: boolean;
}
