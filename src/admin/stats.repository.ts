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
 * Per-bucket counts of the whole deployment's work, from the tables every replica writes ($1 the
 * bucket width, $2 the number of buckets, the last one being the current, partial bucket), aligned
 * on the epoch by the database clock. Each count is an index-only range scan over one bucket (see the
 * migration AdminConsoleIndexes1767830400000): when events were received, processed (processed_at is
 * set when an event is processed or ignored) and dead-lettered, and the per-minute retry counters.
 * Counting bucket by bucket reads each index entry once and needs no sort or hash of the rows
 * (grouping a week of events by date_bin made PostgreSQL sort them all on disk).
 */
export const STATS_SQL = `SELECT b.start,
              (SELECT count(*) FROM subscription_events
                WHERE received_at >= b.start AND received_at < b.start + $1::interval)::integer AS received,
              (SELECT count(*) FROM subscription_events
                WHERE processed_at >= b.start AND processed_at < b.start + $1::interval)::integer AS processed,
              (SELECT coalesce(sum(retried), 0) FROM webhook_retry_counts
                WHERE minute >= b.start AND minute < b.start + $1::interval)::integer AS retried,
              (SELECT count(*) FROM webhook_dead_letter_queue
                WHERE created_at >= b.start AND created_at < b.start + $1::interval)::integer AS dead
         FROM (SELECT date_bin($1::interval, now(), timestamptz 'epoch') - i * $1::interval AS start
                 FROM generate_series($2::integer - 1, 0, -1) i) b`;

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
