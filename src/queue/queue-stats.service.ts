import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { withTimeout } from '../common/with-timeout';
import { Database } from '../database/database';
import { errorMessage } from '../common/error-message';

export interface QueueStats {
  /** Queue rows not yet done. */
  pending: number;
  /** Of those, the ones that already failed at least once. */
  pendingRetries: number;
  /** Open dead letters (neither replayed nor discarded). */
  deadLetters: number;
  oldestPendingAgeSeconds: number;
  /** When these figures were read (ms since epoch). */
  measuredAt: number;
}

/** Figures are refreshed this often in the background, so they are never more than ~2 s old. */
const REFRESH_MS = 2_000;
/**
 * A count that has not answered by then is given up (its connection destroyed), so that the next
 * refresh starts afresh: a count stuck on a silent database must not stand for every later one.
 */
const COUNT_TIMEOUT_MS = 3_000;

/**
 * Backlog figures for /health/webhooks and the metrics gauges. They are counted in the background,
 * not per probe, so that a probe stays fast however large the tables grow; the counts use only the
 * queue (small unless there is a backlog) and the partial index of open dead letters.
 */
@Injectable()
export class QueueStatsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(QueueStatsService.name);
  private latest: QueueStats | undefined;
  private refreshing: Promise<QueueStats> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: Database) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), REFRESH_MS);
    this.timer.unref();
    void this.refresh().catch(() => undefined);
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** The latest figures if at most `maxAgeMs` old, else freshly counted. */
  async current(maxAgeMs = 5_000): Promise<QueueStats> {
    if (this.latest && Date.now() - this.latest.measuredAt <= maxAgeMs) {
      return this.latest;
    }
    return this.refresh();
  }

  /** The latest figures, without waiting (undefined before the first count). */
  get cached(): QueueStats | undefined {
    return this.latest;
  }

  /** Counts now, or joins the count in flight (which gives up after COUNT_TIMEOUT_MS, waiting for a connection included). */
  refresh(): Promise<QueueStats> {
    this.refreshing ??= withTimeout(this.count(), COUNT_TIMEOUT_MS).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async count(): Promise<QueueStats> {
    try {
      const {
        rows: [row],
      } = await this.db.queryWithin<{
        pending: string;
        pending_retries: string;
        dead_letters: string;
        oldest: string | null;
      }>(
        COUNT_TIMEOUT_MS,
        `SELECT (SELECT count(*) FROM webhook_retry_queue) AS pending,
                (SELECT count(*) FROM webhook_retry_queue WHERE last_error IS NOT NULL) AS pending_retries,
                (SELECT count(*) FROM webhook_dead_letter_queue WHERE resolution IS NULL) AS dead_letters,
                (SELECT extract(epoch FROM clock_timestamp() - min(enqueued_at)) FROM webhook_retry_queue) AS oldest`,
      );
      this.latest = {
        pending: Number(row.pending),
        pendingRetries: Number(row.pending_retries),
        deadLetters: Number(row.dead_letters),
        oldestPendingAgeSeconds: row.oldest === null ? 0 : Math.max(0, Math.floor(Number(row.oldest))),
        measuredAt: Date.now(),
      };
      return this.latest;
    } catch (error) {
      this.logger.debug({ error: errorMessage(error) }, 'queue figures not refreshed');
      throw error;
    }
  }
}
