import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProperty,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { StoredIdPipe } from '../common/stored-id.pipe';
import type { Entitlements } from './entitlements';
import { EntitlementsService } from './entitlements.service';

class EntitlementsDto {
  @ApiProperty() customer_id!: string;
  @ApiProperty({ nullable: true, type: String }) user_id!: string | null;
  @ApiProperty({ description: 'a subscription has a status in ACCESS_STATUSES' }) active!: boolean;
  @ApiProperty({ nullable: true, type: String }) status!: string | null;
  @ApiProperty({ type: [String] }) subscription_ids!: string[];
  @ApiProperty({ type: [String] }) price_ids!: string[];
  @ApiProperty({ type: [String] }) product_ids!: string[];
  @ApiProperty({ type: [String], description: 'entitlement lookup keys, else price features and lookup keys' })
  features!: string[];
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) current_period_end!: string | null;
  @ApiProperty() cancel_at_period_end!: boolean;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

/** Who may use what, for product teams (same bearer tokens as the admin API). */
@ApiTags('entitlements')
@ApiBearerAuth()
@ApiOkResponse({ type: EntitlementsDto })
@ApiUnauthorizedResponse({ description: 'unauthorized' })
@ApiNotFoundResponse({ description: 'not_found: unknown customer or user' })
@Controller('v1')
@UseGuards(AdminTokenGuard)
export class EntitlementsController {
  constructor(private readonly entitlements: EntitlementsService) {}

  @Get('customers/:customerId/entitlements')
  forCustomer(@Param('customerId', new StoredIdPipe('customer')) customerId: string): Promise<Entitlements> {
    return this.entitlements.forCustomer(customerId);
  }

  @Get('users/:userId/entitlements')
  forUser(@Param('userId', new StoredIdPipe('user')) userId: string): Promise<Entitlements> {
    return this.entitlements.forUser(userId);
  }
}
