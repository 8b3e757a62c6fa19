import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { startCronJob, stopCronJob } from '../common/cron-jobs';
import { isDatabaseUnavailable } from '../common/database-errors';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { Dispatcher } from './dispatcher.service';
import { EventProcessor } from './event-processor';
import { QueueRepository } from './queue.repository';
import { RowReleaser } from './row-releaser';

export const RETRY_JOB_NAME = 'webhook-retry';

/**
 * Claims due rows (retries, expired leases, rows no replica could hold at once) on RETRY_CRON and
 * when nudged, as many as this replica has room for, until nothing is due; one drain at a time.
 */
@Injectable()
export class RetryWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(RetryWorker.name);
  private draining: Promise<void> | undefined;
  private again = false;
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    private readonly dispatcher: Dispatcher,
    private readonly processor: EventProcessor,
    private readonly queue: QueueRepository,
    private readonly releaser: RowReleaser,
  ) {
    this.releaser.onReleased(() => this.nudge());
  }

  onApplicationBootstrap(): void {
    startCronJob(this.scheduler, RETRY_JOB_NAME, this.config.retryCron, () => void this.drain());
    void this.drain(); // whatever became due while no replica was running
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await stopCronJob(this.scheduler, RETRY_JOB_NAME);
    this.dispatcher.beginStop();
    // A claim in flight finishes and gives its rows back (see loop); bounded, for a hung database.
    await withTimeout(this.draining ?? Promise.resolve(), this.processor.leaseMs).catch(() =>
      this.logger.warn('a claim did not return before shutdown; its rows wait for their lease'),
    );
    await this.dispatcher.stop();
    this.releaser.stop();
    await withTimeout(this.releaser.flush(), 5_000).catch(() => undefined);
  }

  /** Something may be due now (a webhook stored without a free slot): drain soon. */
  nudge(): void {
    void this.drain();
  }

  /** Resolves once no drain is running (the one at boot included). */
  async whenDrained(): Promise<void> {
    while (this.draining) {
      await this.draining;
    }
  }

  /** Claims and starts due rows until none are left; never runs twice at once on a replica. */
  drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.again = false;
    this.draining = this.loop().finally(() => {
      this.draining = undefined;
      // A nudge that came after the loop's last look must not wait for the next cron tick.
      if (this.again && !this.stopping) {
        void this.drain();
      }
    });
    return this.draining;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.releaser.flush();
      while (!this.stopping) {
        await this.dispatcher.waitForSlot();
        // Slots are reserved before claiming, so deliveries arriving meanwhile cannot take them too.
        const slots = this.dispatcher.reserveUpTo(this.config.workerBatchSize);
        if (this.stopping || slots === 0) {
          this.dispatcher.cancel(slots);
          break;
        }
        let rows;
        try {
          rows = await this.queue.claimDue(slots, this.dispatcher.replicaId, this.processor.leaseMs);
        } catch (error) {
          this.dispatcher.cancel(slots);
          const unavailable = isDatabaseUnavailable(error);
          this.logger.warn(
            { err: unavailable ? undefined : error },
            unavailable ? 'database unavailable; will retry' : 'claim failed',
          );
          return;
        }
        this.dispatcher.cancel(slots - rows.length);
        if (this.stopping) {
          // Shutdown began while claiming: give the rows back, uncounted, for another replica.
          this.dispatcher.cancel(rows.length);
          await this.releaser.giveBack(rows);
          break;
        }
        this.dispatcher.start(...rows);
        if (rows.length < slots) {
          break;
        }
      }
    } while (this.again && !this.stopping);
  }
}
