import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { ACCOUNT_ID_FORMAT } from '../../common/stripe-event';

export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be an integer from 1 to 500' })
  @Min(1, { message: 'limit must be an integer from 1 to 500' })
  @Max(500, { message: 'limit must be an integer from 1 to 500' })
  limit: number = 50;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;
}

/** `?account=acct_…`: only what came from that connected account. */
export class AccountPageQuery extends PageQuery {
  @ApiPropertyOptional({
    example: 'acct_1032D82eZvKYlo2C',
    description: 'only events of this connected account (Connect), by their `account`',
  })
  @IsOptional()
  @IsString({ message: 'account must be a Stripe account id (acct_ followed by letters or digits)' })
  @Matches(ACCOUNT_ID_FORMAT, { message: 'account must be a Stripe account id (acct_ followed by letters or digits)' })
  account?: string;
}

export class DeadLettersQuery extends AccountPageQuery {
  @ApiPropertyOptional({ example: 'customer.subscription.updated' })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  event_type?: string;
}
