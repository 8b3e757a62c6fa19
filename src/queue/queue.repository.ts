import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { StripeEvent } from '../common/stripe-event';

export type EventStatus = 'pending' | 'processed' | 'ignored' | 'dead' | 'discarded';

/** A queue row this replica already holds when it is inserted, so it can run the handler at once. */
export interface PreClaim {
  token: string;
  lockedBy: string;
  leaseMs: number;
}

export interface EventRecord {
  stripe_event_id: string;
  event_type: string;
  status: EventStatus;
  attempts: number;
  last_error: string | null;
  received_at: Date;
  processed_at: Date | null;
}

/**
 * SQL for the events table and the retry queue. Every statement that changes a queue row a replica
 * holds is fenced on that row's lock token (see the claim and settle methods).
 */
@Injectable()
export class QueueRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Stores a new event and, when it is to be handled, its queue row, in one statement (hence one
   * transaction): either both rows exist or neither. A second delivery of the same event id (even
   * concurrent, on another connection) inserts nothing: ON CONFLICT DO NOTHING waits for the first
   * insert to commit and then skips. Returns the new event's id, or null for a duplicate.
   */
  async insertEvent(
    event: StripeEvent,
    rawPayload: string,
    status: 'pending' | 'ignored',
    claim: PreClaim | null,
  ): Promise<string | null> {
    const rows = await this.dataSource.query<Array<{ id: string }>>(
      `WITH event AS (
         INSERT INTO subscription_events
           (stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, processed_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, to_timestamp($7), CASE WHEN $3 = 'ignored' THEN now() END)
         ON CONFLICT (stripe_event_id) DO NOTHING
         RETURNING id, status
       ), queued AS (
         INSERT INTO webhook_retry_queue
           (event_id, stripe_event_id, event_type, attempts, lock_token, locked_by, next_retry_at)
         SELECT id, $1, $2, CASE WHEN $8::uuid IS NULL THEN 0 ELSE 1 END, $8::uuid, $9,
                now() + COALESCE($10::integer, 0) * interval '1 millisecond'
           FROM event
          WHERE status = 'pending'
       )
       SELECT id FROM event`,
      [
        event.id,
        event.type,
        status,
        rawPayload,
        event.livemode,
        event.apiVersion,
        event.created,
        claim?.token ?? null,
        claim?.lockedBy ?? null,
        claim?.leaseMs ?? null,
      ],
    );
    return rows[0]?.id ?? null;
  }

  /** An event's state; `attempts` and `last_error` come from its queue row while it is queued. */
  async findEvent(stripeEventId: string): Promise<EventRecord | null> {
    const rows = await this.dataSource.query<EventRecord[]>(
      `SELECT e.stripe_event_id, e.event_type, e.status,
              COALESCE(q.attempts, e.attempts) AS attempts,
              COALESCE(q.last_error, e.last_error) AS last_error,
              e.received_at, e.processed_at
         FROM subscription_events e
         LEFT JOIN webhook_retry_queue q ON q.event_id = e.id
        WHERE e.stripe_event_id = $1`,
      [stripeEventId],
    );
    return rows[0] ?? null;
  }
}
