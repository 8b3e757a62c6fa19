import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';

/** Starts a named job; registered at run time because @Cron() reads its expression before the configuration exists. */
export function startCronJob(scheduler: SchedulerRegistry, name: string, cronTime: string, onTick: () => void): void {
  scheduler.addCronJob(name, CronJob.from({ cronTime, onTick, start: true }));
}

/** Stops and forgets a named job, if it was started. */
export async function stopCronJob(scheduler: SchedulerRegistry, name: string): Promise<void> {
  if (scheduler.doesExist('cron', name)) {
    await scheduler.getCronJob(name).stop();
    scheduler.deleteCronJob(name);
  }
}
