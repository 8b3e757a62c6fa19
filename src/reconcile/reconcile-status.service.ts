import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { errorMessage } from '../common/error-message';
import { withTimeout } from '../common/with-timeout';
import { Database } from '../database/database';
import { MetricsService } from '../metrics/metrics.service';
import { StripeApi } from '../stripe/stripe-api.service';
import { PLATFORM } from './reconcile.repository';

export interface ReconcileHealth {
  reconcile: 'disabled' | 'ok' | 'failing';
  /** The end of the last successful sweep (of any replica), or null. */
  lastReconcileAt: Date | null;
}

const REFRESH_MS = 5_000;
const QUERY_TIMEOUT_MS = 2_000;

/**
 * How sweeps are going, for /health/webhooks and the last-success gauge: read from the checkpoint
 * row (so every replica reports the same, whichever one swept), in the background every 5 s and
 * right after a sweep here, so that a probe never waits for it.
 */
@Injectable()
export class ReconcileStatus implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconcileStatus.name);
  private latest: ReconcileHealth;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly api: StripeApi,
    private readonly metrics: MetricsService,
  ) {
    this.latest = { reconcile: api.enabled ? 'ok' : 'disabled', lastReconcileAt: null };
  }

  onApplicationBootstrap(): void {
    if (this.api.enabled) {
      void this.refresh();
      this.timer = setInterval(() => void this.refresh(), REFRESH_MS).unref();
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  get current(): ReconcileHealth {
    return this.latest;
  }

  /** Reads the shared state now; on failure keeps the last figures (the database check reports an outage). */
  async refresh(): Promise<ReconcileHealth> {
    if (!this.api.enabled) {
      return this.latest;
    }
    try {
      // Bounded waiting for a connection included: on a silent database the figures stay as they were.
      const { rows } = await withTimeout(
        this.db.queryWithin<{ last_outcome: string | null; last_success_at: Date | null }>(
          QUERY_TIMEOUT_MS,
          'SELECT last_outcome, last_success_at FROM reconcile_checkpoints WHERE account_id = $1',
          [PLATFORM],
        ),
        QUERY_TIMEOUT_MS,
      );
      const row = rows[0];
      this.latest = {
        reconcile: row?.last_outcome === 'failed' ? 'failing' : 'ok',
        lastReconcileAt: row?.last_success_at ?? null,
      };
      if (this.latest.lastReconcileAt) {
        this.metrics.reconcileLastSuccess(this.latest.lastReconcileAt);
      }
    } catch (error) {
      this.logger.debug({ error: errorMessage(error) }, 'sweep status not refreshed');
    }
    return this.latest;
  }
}
