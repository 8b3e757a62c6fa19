import { Injectable } from '@nestjs/common';
import { AlertService } from '../alerts/alert.service';
import type { FailureKind, ReconcileState } from './reconcile.repository';

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

  /** After a sweep that stores events: `failure` null when it succeeded. */
  outcome(previous: ReconcileState | null, failure: { kind: FailureKind; error: string } | null): void {
    const before = previous?.lastOutcome === 'failed' ? (previous.lastFailureKind ?? 'failing') : 'ok';
    const after = failure ? failure.kind : 'ok';
    if (before === after) {
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
}
