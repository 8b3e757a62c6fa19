import { Injectable } from '@nestjs/common';
import type { StripeEvent } from '../common/stripe-event';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';
import { CLAIM_DUE_SQL } from './claim-sql';

/** How long giving a held row back may take before it is tried again later. */
const RELEASE_TIMEOUT_MS = 2_000;

export type EventStatus = 'pending' | 'processed' | 'ignored' | 'dead' | 'discarded';

/** A queue row this replica already holds when it is inserted, so it can run the handler at once. */
export interface PreClaim {
  token: string;
  lockedBy: string;
  leaseMs: number;
}

/** A queue row this replica holds: its lease is fenced by `token`. */
export interface ClaimedRow {
  eventId: string;
  token: string;
  /** Attempts so far, this one included. */
  attempts: number;
  eventType: string;
  stripeEventId: string;
  payload: unknown;
}

export interface DeadLetterRow {
  id: string;
  stripe_event_id: string;
  event_type: string;
  retry_count: number;
  error: string;
}

export interface PendingRow {
  stripe_event_id: string;
  event_type: string;
  retry_count: number;
  next_retry_at: Date;
  last_error: string | null;
  locked_by: string | null;
  enqueued_at: Date;
  /** Cursor fields: the due time in microseconds since the epoch, and the event id (as text). */
  due_us: string;
  event_key: string;
}

export type RequeueResult = 'done' | 'not_found' | 'pending' | 'dead' | 'discarded';

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
  constructor(private readonly db: Database) {}

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
    const { rows } = await sql<{ id: string }>(
      this.db,
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
                clock_timestamp() + COALESCE($10::integer, 0) * interval '1 millisecond'
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
      'swp_insert_event',
    );
    return rows[0]?.id ?? null;
  }

  /** An event's state; `attempts` and `last_error` come from its queue row while it is queued. */
  async findEvent(stripeEventId: string): Promise<EventRecord | null> {
    const { rows } = await sql<EventRecord>(
      this.db,
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

  /**
   * Claims up to `limit` due rows for this replica in one statement. The CTE selects due rows in
   * due order with FOR UPDATE SKIP LOCKED, so rows another replica is claiming or working on are
   * skipped, never waited for, and LIMIT bounds the claim exactly (an UPDATE … WHERE id IN (SELECT …
   * LIMIT n) can be re-evaluated and take more). The UPDATE counts the attempt, gives each row a
   * fresh lock token, and leases it: next_retry_at moves to now() + lease, so the row of a replica
   * that dies becomes due again once the lease runs out.
   */
  async claimDue(limit: number, lockedBy: string, leaseMs: number): Promise<ClaimedRow[]> {
    const { rows } = await sql<{
      event_id: string;
      lock_token: string;
      attempts: number;
      event_type: string;
      stripe_event_id: string;
      payload: unknown;
    }>(this.db, CLAIM_DUE_SQL, [limit, lockedBy, leaseMs], 'swp_claim_due');
    return rows.map((r) => ({
      eventId: r.event_id,
      token: r.lock_token,
      attempts: r.attempts,
      eventType: r.event_type,
      stripeEventId: r.stripe_event_id,
      payload: r.payload,
    }));
  }

  /**
   * Schedules the next attempt after a failed one, fenced on the lock token: a replica whose lease
   * was taken over changes nothing. The row is unlocked and due `delaySeconds` from now by the
   * database clock (clock_timestamp(), not the statement's start, in case it waited on a lock);
   * the event row records the attempts and the error for the admin API.
   */
  async scheduleRetry(row: ClaimedRow, error: string, delaySeconds: number): Promise<boolean> {
    const { rows } = await sql<{ id: string }>(
      this.db,
      `WITH q AS (
         UPDATE webhook_retry_queue
            SET lock_token = NULL, locked_by = NULL, last_error = $3,
                next_retry_at = clock_timestamp() + $4 * interval '1 second'
          WHERE event_id = $1 AND lock_token = $2
         RETURNING event_id, attempts
       )
       UPDATE subscription_events e
          SET attempts = q.attempts, last_error = $3
         FROM q
        WHERE e.id = q.event_id
       RETURNING e.id`,
      [row.eventId, row.token, error, delaySeconds],
      'swp_schedule_retry',
    );
    return rows.length > 0;
  }

  /**
   * Moves a row that used up its attempts (or failed permanently) to the dead-letter queue and marks
   * its event `dead`, in one statement, fenced on the lock token. Returns the dead letter, or null
   * when the lease was lost.
   */
  async deadLetter(row: ClaimedRow, error: string): Promise<DeadLetterRow | null> {
    const { rows } = await sql<DeadLetterRow>(
      this.db,
      `WITH q AS (
         DELETE FROM webhook_retry_queue
          WHERE event_id = $1 AND lock_token = $2
         RETURNING event_id, stripe_event_id, event_type, attempts
       ), e AS (
         UPDATE subscription_events e
            SET status = 'dead', attempts = q.attempts, last_error = $3
           FROM q
          WHERE e.id = q.event_id
         RETURNING e.id, e.event_created_at
       )
       INSERT INTO webhook_dead_letter_queue
         (event_id, stripe_event_id, event_type, retry_count, error, original_timestamp)
       SELECT q.event_id, q.stripe_event_id, q.event_type, q.attempts, $3, e.event_created_at
         FROM q JOIN e ON e.id = q.event_id
       RETURNING id, stripe_event_id, event_type, retry_count, error`,
      [row.eventId, row.token, error],
    );
    return rows[0] ?? null;
  }

  /**
   * Gives a held row back, due now, for any replica to take: on shutdown, and when an attempt could
   * not run because the database was unreachable (then `uncount` undoes the attempt the claim
   * counted, so that outages never use attempts up). Fenced on the lock token.
   */
  async release(eventId: string, token: string, uncount: boolean): Promise<boolean> {
    // Bounded: it runs while the database may be silent (after an outage, at shutdown), and a
    // release that never returns would hold up every later one. If it commits after the client gave
    // up, the next try finds the token gone and changes nothing.
    const { rows } = await this.db.queryWithin<{ event_id: string }>(
      RELEASE_TIMEOUT_MS,
      `UPDATE webhook_retry_queue
          SET lock_token = NULL, locked_by = NULL, next_retry_at = clock_timestamp(),
              attempts = CASE WHEN $3 THEN greatest(attempts - 1, 0) ELSE attempts END
        WHERE event_id = $1 AND lock_token = $2
       RETURNING event_id`,
      [eventId, token, uncount],
    );
    return rows.length > 0;
  }

  /**
   * First statement of an attempt's transaction, in one round trip: deletes the held queue row,
   * fenced on the lock token, and bounds every later statement (statement_timeout) and pause
   * (idle_in_transaction_session_timeout) of the transaction on the server. From here until commit
   * the row is locked, so no other replica can claim it even if the lease runs out; if the token no
   * longer matches (the lease was lost and the row claimed again), the attempt must not run. The
   * delete commits only with the handler's writes.
   */
  async takeForAttempt(
    tx: Executor,
    row: ClaimedRow,
    statementTimeoutMs: number,
    idleTimeoutMs: number,
  ): Promise<boolean> {
    const { rows } = await sql(
      tx,
      `WITH bounded AS (
         SELECT set_config('statement_timeout', $3, true), set_config('idle_in_transaction_session_timeout', $4, true)
       )
       DELETE FROM webhook_retry_queue
        WHERE event_id = $1 AND lock_token = $2 AND EXISTS (SELECT 1 FROM bounded)
       RETURNING event_id`,
      [row.eventId, row.token, String(statementTimeoutMs), String(idleTimeoutMs)],
      'swp_take_for_attempt',
    );
    return rows.length > 0;
  }

  /**
   * Last statement of a successful attempt's transaction. (Done last, not first: while the event row
   * is locked, a duplicate delivery's insert waits for it.)
   */
  async complete(tx: Executor, row: ClaimedRow, status: 'processed' | 'ignored'): Promise<void> {
    await sql(
      tx,
      `UPDATE subscription_events
          SET status = $2, attempts = $3, last_error = NULL, processed_at = now()
        WHERE id = $1`,
      [row.eventId, status, row.attempts],
      'swp_complete',
    );
  }

  /** Queue rows in due order (the next to run first), after the (due time, event id) of `after`. */
  async listPending(limit: number, after?: { dueUs: string; eventId: string }): Promise<PendingRow[]> {
    const params: unknown[] = [limit];
    let where = '';
    if (after) {
      params.push(after.dueUs, after.eventId);
      where = `WHERE (next_retry_at, event_id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::bigint)`;
    }
    const { rows } = await sql<PendingRow>(
      this.db,
      `SELECT stripe_event_id, event_type, attempts AS retry_count, next_retry_at, last_error, locked_by, enqueued_at,
              (extract(epoch FROM next_retry_at) * 1000000)::bigint::text AS due_us, event_id::text AS event_key
         FROM webhook_retry_queue
         ${where}
        ORDER BY next_retry_at, webhook_retry_queue.event_id
        LIMIT $1`,
      params,
    );
    return rows;
  }

  /**
   * Queues a `processed` or `ignored` event again, due now, attempts reset (after a handler fix),
   * in one statement; anything else is refused with the reason.
   */
  async requeue(manager: Executor, stripeEventId: string): Promise<RequeueResult> {
    const { rows } = await sql(
      manager,
      `WITH event AS (
         UPDATE subscription_events
            SET status = 'pending', attempts = 0, last_error = NULL, processed_at = NULL
          WHERE stripe_event_id = $1 AND status IN ('processed', 'ignored')
         RETURNING id, stripe_event_id, event_type
       )
       INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
       SELECT id, stripe_event_id, event_type, 0, now() FROM event
       RETURNING event_id`,
      [stripeEventId],
    );
    if (rows.length > 0) {
      return 'done';
    }
    const { rows: found } = await sql<{ status: EventStatus }>(
      manager,
      'SELECT status FROM subscription_events WHERE stripe_event_id = $1',
      [stripeEventId],
    );
    if (found.length === 0) {
      return 'not_found';
    }
    const status = found[0].status;
    return status === 'processed' || status === 'ignored' ? 'pending' : status;
  }
}
