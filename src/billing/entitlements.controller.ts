import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { AppError, ErrorCode } from '../common/app-error';
import type { Entitlements } from './entitlements';
import { EntitlementsService } from './entitlements.service';

/** Who may use what, for product teams (same bearer tokens as the admin API). */
@Controller('v1')
@UseGuards(AdminTokenGuard)
export class EntitlementsController {
  constructor(private readonly entitlements: EntitlementsService) {}

  @Get('customers/:customerId/entitlements')
  forCustomer(@Param('customerId') customerId: string): Promise<Entitlements> {
    return this.entitlements.forCustomer(checkedId(customerId, 'customer id'));
  }

  @Get('users/:userId/entitlements')
  forUser(@Param('userId') userId: string): Promise<Entitlements> {
    return this.entitlements.forUser(checkedId(userId, 'user id'));
  }
}

export function checkedId(value: string, what: string): string {
  if (value.length === 0 || value.length > 255) {
    throw new AppError(ErrorCode.InvalidRequest, `The ${what} must be 1 to 255 characters.`);
  }
  return value;
}
