import { Body, Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProperty,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { IsInt, IsString, Length, Max, Min } from 'class-validator';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { StoredIdPipe } from '../common/stored-id.pipe';
import { UsageService, UsageView } from './usage.service';
import { WalletService, WalletView } from './wallet.service';

const MAX_USAGE_QUANTITY = 1_000_000_000;

class UsageBody {
  @ApiProperty({ minimum: 1, maximum: MAX_USAGE_QUANTITY })
  @IsInt({ message: `quantity must be a positive integer (at most ${MAX_USAGE_QUANTITY})` })
  @Min(1, { message: `quantity must be a positive integer (at most ${MAX_USAGE_QUANTITY})` })
  @Max(MAX_USAGE_QUANTITY, { message: `quantity must be a positive integer (at most ${MAX_USAGE_QUANTITY})` })
  quantity!: number;

  @ApiProperty({ description: 'a repeated key counts once', maxLength: 255 })
  @IsString({ message: 'idempotency_key must be a string of 1 to 255 characters' })
  @Length(1, 255, { message: 'idempotency_key must be a string of 1 to 255 characters' })
  idempotency_key!: string;
}

class UsageDto {
  @ApiProperty({ format: 'date-time' }) period_start!: string;
  @ApiProperty({ format: 'date-time' }) period_end!: string;
  @ApiProperty() used!: number;
}

class WalletEntryDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ description: 'minor units' }) amount!: number;
  @ApiProperty() currency!: string;
  @ApiProperty() payment_intent!: string;
  @ApiProperty() source_event_id!: string;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
}

class WalletDto implements WalletView {
  @ApiProperty() customer_id!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { usd: 7500 } })
  balances!: Record<string, number>;
  @ApiProperty({ nullable: true, type: String }) auto_recharge_payment_method!: string | null;
  @ApiProperty({ type: [WalletEntryDto], description: 'newest 50' }) entries!: WalletEntryDto[];
}

const customerIdPipe = new StoredIdPipe('customer');

/** Pre-paid wallets and metered usage (same bearer tokens as the admin API). */
@ApiTags('wallet and usage')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'unauthorized' })
@ApiNotFoundResponse({ description: 'not_found: unknown customer' })
@Controller('v1/customers/:customerId')
@UseGuards(AdminTokenGuard)
export class WalletUsageController {
  constructor(
    private readonly wallets: WalletService,
    private readonly usage: UsageService,
  ) {}

  @Get('wallet')
  @ApiOkResponse({ type: WalletDto })
  wallet(@Param('customerId', customerIdPipe) id: string): Promise<WalletView> {
    return this.wallets.find(id);
  }

  /** Adds `quantity` to the current period, once per idempotency_key. */
  @Post('usage')
  @HttpCode(200)
  @ApiOkResponse({ type: UsageDto })
  @ApiConflictResponse({
    description:
      'no current billing period (no access-granting subscription), or the key was used with another quantity',
  })
  recordUsage(@Param('customerId', customerIdPipe) id: string, @Body() body: UsageBody): Promise<UsageView> {
    return this.usage.record(id, body.quantity, body.idempotency_key);
  }

  @Get('usage')
  @ApiOkResponse({ type: UsageDto })
  @ApiConflictResponse({ description: 'no current billing period (no access-granting subscription)' })
  currentUsage(@Param('customerId', customerIdPipe) id: string): Promise<UsageView> {
    return this.usage.current(id);
  }
}
