import { Injectable } from '@nestjs/common';
import { AlertService } from '../alerts/alert.service';
import { FailureKind, PLATFORM, ReconcileState } from './reconcile.repository';

/**
 * Alerts about sweeps, through ALERT_WEBHOOK_URL. A sweep that stores events means they were never
 * delivered (something upstream is misconfigured), so each such sweep says how many and of which
 * types. Failures are reported once per change of state (working → failing → key refused →
 * working), whichever replica swept, since the previous state is read from the database.
 */
@Injectable()
export class ReconcileAlerts {
  constructor(private readonly alerts: AlertService) {}

  recovered(runId: string, byType: ReadonlyMap<string, number>): void {
    const total = [...byType.values()].reduce((a, b) => a + b, 0);
    const types = [...byType.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([type, n]) => `${n} ${type}`)
      .join(', ');
    void this.alerts.send(
      `:mag: Reconciliation recovered ${total} Stripe event${total === 1 ? '' : 's'} that never arrived by webhook ` +
        `(${types}); they are being handled now. Something upstream is misconfigured: a disabled or failing ` +
        `endpoint, an event type the endpoint does not send, or a wrong STRIPE_WEBHOOK_SECRET. Run ${runId}.`,
    );
  }

  /**
   * After a sweep that stores events has listed an account's range (`account` PLATFORM, or a connected
   * account): `failure` null when it succeeded.
   */
  outcome(
    previous: ReconcileState | null,
    failure: { kind: FailureKind; error: string } | null,
    account: string = PLATFORM,
  ): void {
    const before = previous?.lastOutcome === 'failed' ? (previous.lastFailureKind ?? 'failing') : 'ok';
    const after = failure ? failure.kind : 'ok';
    if (before === after) {
      return;
    }
    if (account !== PLATFORM) {
      this.accountOutcome(account, after, failure?.error ?? '');
      return;
    }
    switch (after) {
      case 'key_refused':
        void this.alerts.send(
          `:no_entry: Stripe refused STRIPE_API_KEY: reconciliation sweeps and entitlement lookups fail until ` +
            `the key is replaced or given the read permissions it needs. ${failure?.error ?? ''}`,
        );
        return;
      case 'failing':
        void this.alerts.send(
          `:warning: Reconciliation sweeps are failing: ${failure?.error ?? ''}. The checkpoint stays where it ` +
            'was, so the next sweep that succeeds covers the missed range.',
        );
        return;
      case 'ok':
        void this.alerts.send(
          ':white_check_mark: Reconciliation sweeps succeed again; the range they missed has been listed.',
        );
        return;
    }
  }

  /** A connected account's sweep changed state: its own alert, so that one account does not hide another. */
  private accountOutcome(account: string, after: FailureKind | 'ok', error: string): void {
    switch (after) {
      case 'key_refused':
        void this.alerts.send(
          `:no_entry: Stripe refused to list the events of connected account ${account}: the platform may have ` +
            `lost access to it (account.application.deauthorized stops its sweeps). ${error}`,
        );
        return;
      case 'failing':
        void this.alerts.send(
          `:warning: Reconciliation sweeps of connected account ${account} are failing: ${error}. Its checkpoint ` +
            'stays where it was; other accounts are swept as usual.',
        );
        return;
      case 'ok':
        void this.alerts.send(
          `:white_check_mark: Reconciliation sweeps of connected account ${account} succeed again; the range they missed has been listed.`,
        );
        return;
    }
  }
}
