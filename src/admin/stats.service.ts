import { Injectable } from '@nestjs/common';
import type { StatsWindow } from './dto/console.query';
import { StatsBucket, StatsRepository } from './stats.repository';

const WINDOWS: Record<StatsWindow, { width: string; count: number }> = {
  '1h': { width: '1 minute', count: 60 },
  '24h': { width: '15 minutes', count: 96 },
  '7d': { width: '1 hour', count: 168 },
};

/**
 * Received, processed, retried and dead events per bucket, for the console's charts. Requests for a
 * window that arrive while it is being counted share that count (several consoles open at once).
 */
@Injectable()
export class StatsService {
  private readonly inFlight = new Map<StatsWindow, Promise<StatsBucket[]>>();

  constructor(private readonly stats: StatsRepository) {}

  async buckets(window: StatsWindow): Promise<{ buckets: StatsBucket[] }> {
    let counting = this.inFlight.get(window);
    if (!counting) {
      const { width, count } = WINDOWS[window];
      counting = this.stats.buckets(width, count).finally(() => this.inFlight.delete(window));
      this.inFlight.set(window, counting);
    }
    return { buckets: await counting };
  }
}
