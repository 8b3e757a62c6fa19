import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
import { BillingRepository } from '../billing.repository';
import { customerEventRank, customerFromStripe, eventOrder } from '../stripe-objects';

/** customer.created / updated set the customer if newer; customer.deleted is final. */
@Injectable()
export class CustomerHandlers {
  private readonly logger = new Logger(CustomerHandlers.name);

  constructor(private readonly billing: BillingRepository) {}

  async upsert(event: StripeEvent, manager: Executor): Promise<void> {
    const customer = customerFromStripe(event.object);
    if (!(await this.billing.upsertCustomer(manager, customer, eventOrder(event, customerEventRank(event.type))))) {
      this.logger.log(
        { eventId: event.id, eventType: event.type, customer: customer.id },
        'older than the stored state (or the customer is deleted): nothing to change',
      );
    }
  }

  async delete(event: StripeEvent, manager: Executor): Promise<void> {
    const customer = customerFromStripe(event.object);
    await this.billing.deleteCustomer(manager, customer, eventOrder(event, customerEventRank(event.type)));
  }
}
