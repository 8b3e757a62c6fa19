import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import type { Page } from '../common/paging';
import { StoredIdPipe } from '../common/stored-id.pipe';
import { CustomerEvent, CustomerEventsService } from './customer-events.service';
import { CustomerSubscription, CustomerSubscriptionsService } from './customer-subscriptions.service';
import { PageQuery } from './dto/page.query';
import { CustomerEventPageDto, CustomerSubscriptionListDto, ErrorDto } from './dto/responses';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@ApiBadRequestResponse({ type: ErrorDto, description: 'invalid_request (limit, cursor)' })
@Controller('admin/customers')
@UseGuards(AdminTokenGuard)
export class CustomersController {
  constructor(
    private readonly events: CustomerEventsService,
    private readonly subscriptions: CustomerSubscriptionsService,
  ) {}

  /**
   * The events that concern a customer (the event's object is the customer, or names it in
   * `customer`), newest `created` first.
   */
  @Get(':customerId/events')
  @ApiOkResponse({ type: CustomerEventPageDto })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'no such customer, and no event names it' })
  list(
    @Param('customerId', new StoredIdPipe('customer')) customerId: string,
    @Query() query: PageQuery,
  ): Promise<Page<CustomerEvent>> {
    return this.events.list(customerId, query);
  }

  /** Every stored subscription of the customer, whatever its status, most recently changed first (at most 100). */
  @Get(':customerId/subscriptions')
  @ApiOkResponse({ type: CustomerSubscriptionListDto })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'no such customer' })
  listSubscriptions(
    @Param('customerId', new StoredIdPipe('customer')) customerId: string,
  ): Promise<{ items: CustomerSubscription[] }> {
    return this.subscriptions.list(customerId);
  }
}
