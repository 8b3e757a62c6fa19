import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { isDatabaseUnavailable } from '../common/database-errors';
import { AppConfig } from '../config/app-config';
import { Dispatcher } from './dispatcher.service';
import { EventProcessor } from './event-processor';
import { QueueRepository } from './queue.repository';

export const RETRY_JOB_NAME = 'webhook-retry';

/**
 * Claims due rows (retries, rows whose lease ran out, rows no replica could take at once) on
 * RETRY_CRON and whenever a webhook could not be handled immediately. One drain at a time per
 * replica: it claims as many rows as there are free slots (at most WORKER_BATCH_SIZE), starts them,
 * and repeats until nothing is due. Claiming only what can start at once keeps every lease honest.
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
  ) {}

  onApplicationBootstrap(): void {
    // Registered at run time: @Cron() would read the expression before the configuration exists.
    const job = CronJob.from({ cronTime: this.config.retryCron, onTick: () => void this.drain(), start: true });
    this.scheduler.addCronJob(RETRY_JOB_NAME, job);
    void this.drain(); // whatever became due while no replica was running
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.scheduler.doesExist('cron', RETRY_JOB_NAME)) {
      await this.scheduler.getCronJob(RETRY_JOB_NAME).stop();
      this.scheduler.deleteCronJob(RETRY_JOB_NAME);
    }
    await this.dispatcher.stop();
    await this.draining;
    await this.processor.flushPendingReleases();
  }

  /** Something may be due now (a webhook stored without a free slot): drain soon. */
  nudge(): void {
    void this.drain();
  }

  /** Claims and starts due rows until none are left; never runs twice at once on a replica. */
  drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = this.loop().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.processor.flushPendingReleases();
      while (!this.stopping) {
        await this.dispatcher.waitForSlot();
        const free = Math.min(this.dispatcher.freeSlots, this.config.workerBatchSize);
        if (this.stopping || free === 0) {
          break;
        }
        let rows;
        try {
          rows = await this.queue.claimDue(free, this.dispatcher.replicaId, this.processor.leaseMs);
        } catch (error) {
          const unavailable = isDatabaseUnavailable(error);
          this.logger.warn(
            { err: unavailable ? undefined : error },
            unavailable ? 'database unavailable; will retry' : 'claim failed',
          );
          return;
        }
        for (const row of rows) {
          this.dispatcher.start(row, false);
        }
        if (rows.length < free) {
          break;
        }
      }
    } while (this.again && !this.stopping);
  }
}
