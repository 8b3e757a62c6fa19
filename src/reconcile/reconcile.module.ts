import { Module } from '@nestjs/common';
import { AlertsModule } from '../alerts/alerts.module';
import { QueueModule } from '../queue/queue.module';
import { StripeApiModule } from '../stripe/stripe-api.module';
import { ReconcileAlerts } from './reconcile-alerts.service';
import { ReconcileRepository } from './reconcile.repository';
import { ReconcileStatus } from './reconcile-status.service';
import { Reconciler } from './reconciler.service';

/** Pulling from Stripe: the reconciliation sweep, its runs and its status. */
@Module({
  imports: [QueueModule, StripeApiModule, AlertsModule],
  providers: [ReconcileRepository, Reconciler, ReconcileStatus, ReconcileAlerts],
  exports: [ReconcileRepository, Reconciler, ReconcileStatus],
})
export class ReconcileModule {}
