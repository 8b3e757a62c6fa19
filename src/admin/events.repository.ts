import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';
import { sql } from '../database/sql';
import type { EventStatus } from '../queue/queue.repository';

export interface EventListRow {
  stripe_event_id: string;
  event_type: string;
  status: EventStatus;
  attempts: number;
  last_error: string | null;
  account_id: string | null;
  source: 'webhook' | 'reconcile' | 'thin';
  received_at: Date;
  processed_at: Date | null;
  /** Cursor fields: the receipt time in microseconds since the epoch, and the event's row id (as text). */
  sort_us: string;
  event_key: string;
}

/**
 * One page of stored events, newest received first, after (receipt time, id): of one connected
 * account when `account` is given (one range of subscription_events_account_idx), else of all
 * (subscription_events_received_at_idx). The cursor comparison is spelled out, as PostgreSQL
 * misjudges a row comparison's selectivity.
 */
export function eventsQuery(
  limit: number,
  account: string | undefined,
  after?: { sortUs: string; eventKey: string },
): { text: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [limit];
  if (account !== undefined) {
    params.push(account);
    where.push(`e.account_id = $${params.length}`);
  }
  if (after) {
    params.push(after.sortUs, after.eventKey);
    const time = `(timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond')`;
    where.push(`e.received_at <= ${time}`, `(e.received_at < ${time} OR e.id < $${params.length}::bigint)`);
  }
  const text = `SELECT e.stripe_event_id, e.event_type, e.status,
              COALESCE(q.attempts, e.attempts) AS attempts,
              COALESCE(q.last_error, e.last_error) AS last_error,
              e.account_id, e.source, e.received_at, e.processed_at,
              (extract(epoch FROM e.received_at) * 1000000)::bigint::text AS sort_us,
              e.id::text AS event_key
         FROM subscription_events e
         LEFT JOIN webhook_retry_queue q ON q.event_id = e.id
        ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY e.received_at DESC, e.id DESC
        LIMIT $1`;
  return { text, params };
}

/** Stored events for the admin list. */
@Injectable()
export class EventsRepository {
  constructor(private readonly db: Database) {}

  async list(
    account: string | undefined,
    limit: number,
    after?: { sortUs: string; eventKey: string },
  ): Promise<EventListRow[]> {
    const { text, params } = eventsQuery(limit, account, after);
    const { rows } = await sql<EventListRow>(this.db, text, params);
    return rows;
  }
}
