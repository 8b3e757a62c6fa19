import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';
import { EVENT_CREATED_SQL, EVENT_CUSTOMER_SQL } from '../../migrations/1767830400000-admin-console-indexes';
import { sql } from '../database/sql';
import type { EventStatus } from '../queue/queue.repository';

export interface CustomerEventRow {
  stripe_event_id: string;
  event_type: string;
  status: EventStatus;
  attempts: number;
  created: Date | null;
  received_at: Date;
  processed_at: Date | null;
  last_error: string | null;
  /** Cursor fields: the sort time in microseconds since the epoch, and the event's row id (as text). */
  sort_us: string;
  event_key: string;
}

const CURSOR_TIME = `(timestamptz 'epoch' + $3::bigint * interval '1 microsecond')`;

/**
 * The events of one customer ($1), newest `created` first, after the (sort time, id) of `after`.
 * The WHERE and ORDER BY repeat the expressions of subscription_events_customer_idx, so that this is
 * one index range scan in order, stopping after $2 rows. The cursor's (time, id) comparison is
 * spelled out rather than a row comparison, whose selectivity PostgreSQL guesses so low that it
 * preferred fetching and sorting every older event of a busy customer. `attempts` and `last_error` come from the
 * queue row while the event is queued, as for GET /admin/events/:id.
 */
export const CUSTOMER_EVENTS_SQL = (after: boolean): string => `SELECT e.stripe_event_id, e.event_type, e.status,
              COALESCE(q.attempts, e.attempts) AS attempts,
              COALESCE(q.last_error, e.last_error) AS last_error,
              e.event_created_at AS created, e.received_at, e.processed_at,
              (extract(epoch FROM ${EVENT_CREATED_SQL}) * 1000000)::bigint::text AS sort_us,
              e.id::text AS event_key
         FROM subscription_events e
         LEFT JOIN webhook_retry_queue q ON q.event_id = e.id
        WHERE ${EVENT_CUSTOMER_SQL} = $1
          ${after ? `AND ${EVENT_CREATED_SQL} <= ${CURSOR_TIME} AND (${EVENT_CREATED_SQL} < ${CURSOR_TIME} OR e.id < $4::bigint)` : ''}
        ORDER BY ${EVENT_CREATED_SQL} DESC, e.id DESC
        LIMIT $2`;

@Injectable()
export class CustomerEventsRepository {
  constructor(private readonly db: Database) {}

  async list(
    customerId: string,
    limit: number,
    after?: { sortUs: string; eventKey: string },
  ): Promise<CustomerEventRow[]> {
    const { rows } = await sql<CustomerEventRow>(
      this.db,
      CUSTOMER_EVENTS_SQL(after !== undefined),
      after ? [customerId, limit, after.sortUs, after.eventKey] : [customerId, limit],
    );
    return rows;
  }

  async customerExists(customerId: string): Promise<boolean> {
    const { rows } = await sql(this.db, 'SELECT 1 FROM customers WHERE stripe_customer_id = $1', [customerId]);
    return rows.length > 0;
  }
}
