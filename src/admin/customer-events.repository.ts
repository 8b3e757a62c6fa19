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
 * A customer's events ($1), newest `created` first, after (sort time, id): subscription_events_customer_idx's
 * expressions, for one ordered index range scan. The cursor comparison is spelled out: PostgreSQL
 * misjudges a row comparison's selectivity, and sorted every older event of a busy customer.
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
}
