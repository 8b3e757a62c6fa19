import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
import { HandlerRegistry } from '../../queue/handler-registry';
import { BillingRepository } from '../billing.repository';
import { customerEventRank, customerFromStripe, eventOrder } from '../stripe-objects';

/** customer.created / updated set the customer if newer; customer.deleted is final. */
@Injectable()
export class CustomerHandlers implements OnModuleInit {
  private readonly logger = new Logger(CustomerHandlers.name);

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly billing: BillingRepository,
  ) {}

  onModuleInit(): void {
    this.registry.register('customer.created', (event, manager) => this.upsert(event, manager));
    this.registry.register('customer.updated', (event, manager) => this.upsert(event, manager));
    this.registry.register('customer.deleted', (event, manager) => this.delete(event, manager));
  }

  private async upsert(event: StripeEvent, manager: Executor): Promise<void> {
    const customer = customerFromStripe(event.object);
    if (!(await this.billing.upsertCustomer(manager, customer, eventOrder(event, customerEventRank(event.type))))) {
      this.logger.log(
        { eventId: event.id, eventType: event.type, customer: customer.id },
        'older than the stored state (or the customer is deleted): nothing to change',
      );
    }
  }

  private async delete(event: StripeEvent, manager: Executor): Promise<void> {
    const customer = customerFromStripe(event.object);
    await this.billing.deleteCustomer(manager, customer, eventOrder(event, customerEventRank(event.type)));
  }
}
