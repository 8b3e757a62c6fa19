import { Injectable, Logger } from '@nestjs/common';
import type { StripeEvent } from '../common/stripe-event';
import type { Executor } from '../database/database';
import { ReconcileRepository } from './reconcile.repository';

/** Events about connected accounts themselves (Connect). */
@Injectable()
export class ConnectedAccountHandlers {
  private readonly logger = new Logger(ConnectedAccountHandlers.name);

  constructor(private readonly repository: ReconcileRepository) {}

  /**
   * `account.application.deauthorized`: the account disconnected the platform, whose key can no longer
   * read it, so sweeps stop listing it (an event it sends later, once authorized again, resumes them).
   */
  async deauthorized(event: StripeEvent, manager: Executor): Promise<void> {
    if (!event.account) {
      this.logger.warn(
        { eventId: event.id, eventType: event.type },
        'deauthorization without an account (not from a Connect endpoint): nothing to stop',
      );
      return;
    }
    const at = event.created === null ? null : new Date(event.created * 1000);
    await this.repository.markDeauthorized(manager, event.account, at);
    this.logger.log(
      { eventId: event.id, eventType: event.type, account: event.account },
      'connected account deauthorized the platform: sweeps no longer list it',
    );
  }
}
