import { Module, OnModuleInit } from '@nestjs/common';
import { AlertsModule } from '../alerts/alerts.module';
import { HandlerRegistry } from '../queue/handler-registry';
import { QueueModule } from '../queue/queue.module';
import { StripeApiModule } from '../stripe/stripe-api.module';
import { ConnectedAccountHandlers } from './connected-accounts.handlers';
import { ReconcileAlerts } from './reconcile-alerts.service';
import { DEAUTHORIZED_EVENT, ReconcileRepository } from './reconcile.repository';
import { ReconcileStatus } from './reconcile-status.service';
import { Reconciler } from './reconciler.service';

/** Pulling from Stripe: the reconciliation sweep, its runs and its status; which connected accounts it covers. */
@Module({
  imports: [QueueModule, StripeApiModule, AlertsModule],
  providers: [ReconcileRepository, Reconciler, ReconcileStatus, ReconcileAlerts, ConnectedAccountHandlers],
  exports: [ReconcileRepository, Reconciler, ReconcileStatus],
})
export class ReconcileModule implements OnModuleInit {
  constructor(
    private readonly registry: HandlerRegistry,
    private readonly accounts: ConnectedAccountHandlers,
  ) {}

  onModuleInit(): void {
    this.registry.register(DEAUTHORIZED_EVENT, (event, tx) => this.accounts.deauthorized(event, tx));
  }
}
