import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';
import { sql } from '../database/sql';

export interface StatsBucket {
  start: Date;
  received: number;
  processed: number;
  retried: number;
  dead: number;
}

/**
 * Per-bucket counts of every replica's work ($1 the bucket width, $2 buckets, the last one partial):
 * an index range scan per bucket and source (grouping a week by date_bin sorted every event on disk);
 * processed and retried come from the per-minute counters.
 */
export const STATS_SQL = `SELECT b.start,
              (SELECT count(*) FROM subscription_events
                WHERE received_at >= b.start AND received_at < b.start + $1::interval)::integer AS received,
              c.processed,
              c.retried,
              (SELECT count(*) FROM webhook_dead_letter_queue
                WHERE created_at >= b.start AND created_at < b.start + $1::interval)::integer AS dead
         FROM (SELECT date_bin($1::interval, now(), timestamptz 'epoch') - i * $1::interval AS start
                 FROM generate_series($2::integer - 1, 0, -1) i) b,
              LATERAL (SELECT coalesce(sum(processed), 0)::integer AS processed, coalesce(sum(retried), 0)::integer AS retried
                         FROM webhook_event_counts
                        WHERE minute >= b.start AND minute < b.start + $1::interval) c`;

@Injectable()
export class StatsRepository {
  constructor(private readonly db: Database) {}

  /**
   * Without JIT: a week of events makes the plan's cost pass jit_above_cost, and compiling it took
   * longer than running it.
   */
  buckets(width: string, count: number): Promise<StatsBucket[]> {
    return this.db.transaction(async (manager) => {
      await sql(manager, 'SET LOCAL jit = off');
      const { rows } = await sql<StatsBucket>(manager, STATS_SQL, [width, count]);
      return rows;
    });
  }
}
