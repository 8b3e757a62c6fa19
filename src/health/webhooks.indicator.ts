import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { LifecycleService } from '../core/lifecycle.service';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { QueueStatsService } from '../queue/queue-stats.service';
import { ReconcileStatus } from '../reconcile/reconcile-status.service';

/**
 * The backlog in the `webhooks` key of /health/webhooks, counted in the background (at most 5 s
 * old), and how reconciliation sweeps go; only the backlog fails the check, past the HEALTH_MAX_*
 * thresholds. A count that cannot finish while the database answers (a table locked, a huge
 * backlog) is no reason to fail: the last figures stand until a count succeeds (the database
 * check beside this one fails the probe when the database is down).
 */
@Injectable()
export class WebhooksIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly stats: QueueStatsService,
    private readonly config: AppConfig,
    private readonly lifecycle: LifecycleService,
    private readonly reconcile: ReconcileStatus,
  ) {}

  async check<Key extends string>(key: Key): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.indicators.check(key);
    let stats;
    try {
      stats = await withTimeout(this.stats.current(5_000), 2_000);
    } catch {
      stats = this.stats.cached;
      if (!stats) {
        return indicator.down({ message: 'queue figures unavailable' });
      }
    }
    const figures = {
      pending: stats.pending,
      pending_retries: stats.pendingRetries,
      dlq_items: stats.deadLetters,
      oldest_pending_age_seconds: stats.oldestPendingAgeSeconds,
      // How sweeps go is reported, never a reason to fail the check.
      reconcile: this.reconcile.current.reconcile,
      last_reconcile_at: this.reconcile.current.lastReconcileAt?.toISOString() ?? null,
    };
    const { maxPending, maxOldestPendingAgeSeconds, maxDeadLetters } = this.config.healthThresholds;
    const problems = [
      maxPending !== undefined && stats.pending > maxPending && `pending above ${maxPending}`,
      maxOldestPendingAgeSeconds !== undefined &&
        stats.oldestPendingAgeSeconds > maxOldestPendingAgeSeconds &&
        `oldest pending older than ${maxOldestPendingAgeSeconds} s`,
      maxDeadLetters !== undefined && stats.deadLetters > maxDeadLetters && `dead letters above ${maxDeadLetters}`,
      this.lifecycle.isShuttingDown && 'shutting down',
    ].filter((p): p is string => typeof p === 'string');
    return problems.length > 0 ? indicator.down({ ...figures, message: problems.join('; ') }) : indicator.up(figures);
  }
}
