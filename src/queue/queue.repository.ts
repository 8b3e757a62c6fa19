import { Injectable } from '@nestjs/common';
import type { StripeEvent } from '../common/stripe-event';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';
import { CLAIM_DUE_SQL } from './claim-sql';

/** How long giving held rows back may take before it is tried again later. */
const RELEASE_TIMEOUT_MS = 2_000;
/**
 * The most a webhook's insert may wait for the database (it is also bounded by the lease): it then
 * answers 503 in time for Stripe to count a failure and retry, rather than hang until Stripe gives up.
 */
const INGEST_TIMEOUT_MAX_MS = 10_000;

export type EventStatus = 'pending' | 'processed' | 'ignored' | 'dead' | 'discarded';

/** An event to store: `claim` holds its queue row for this replica from the start, so it runs at once. */
export interface NewEvent {
  event: StripeEvent;
  rawPayload: string;
  status: 'pending' | 'ignored';
  claim: PreClaim | null;
  /** Where it came from: `webhook` (the default) or `thin` (POST /webhooks/stripe/thin). */
  source?: EventSource;
}

/** `subscription_events.source`: how an event reached this service. */
export type EventSource = 'webhook' | 'reconcile' | 'thin';

export interface PreClaim {
  token: string;
  lockedBy: string;
  leaseMs: number;
}

/** A queue row held by a claim: every write about it is fenced by `token`. */
export interface HeldRow {
  eventId: string;
  token: string;
}

/** A queue row this replica holds, with what its attempt needs. */
export interface ClaimedRow extends HeldRow {
  /** This attempt's number: the failed runs recorded before it, plus one. */
  attempt: number;
  /** Claims since the last recorded result, this one included. */
  claims: number;
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
  /** Cursor fields: the enqueue time in microseconds since the epoch, and the event id (as text). */
  enqueued_us: string;
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

/** How an attempt ended, for the statement that completes the events of a batch. */
export interface Completion {
  row: ClaimedRow;
  status: 'processed' | 'ignored';
}

interface ClaimedDbRow {
  event_id: string;
  lock_token: string;
  attempts: number;
  claims: number;
  event_type: string;
  stripe_event_id: string;
  payload: unknown;
}

/**
 * SQL for the events table and the retry queue. Every statement that changes a queue row a replica
 * holds is fenced on that row's lock token, so a replica whose lease was taken over changes nothing.
 */
@Injectable()
export class QueueRepository {
  constructor(private readonly db: Database) {}

  /**
   * Stores new events with their queue rows in one statement: each with its row or not at all. An id
   * already stored (even by a concurrent statement, which ON CONFLICT waits for) inserts nothing.
   * Returns each event's new id in order, or null for a duplicate. The ids must be distinct.
   */
  async insertEvents(events: NewEvent[]): Promise<Array<string | null>> {
    const { rows } = await this.db.queryWithin<{ id: string; stripe_event_id: string }>(
      Math.min(this.db.statementTimeoutMs, INGEST_TIMEOUT_MAX_MS),
      // The payloads travel as one JSON array of the bodies as received (one text to send, nothing to
      // escape), the other fields as arrays in the same order.
      `WITH input AS (
         SELECT i.*, p.payload
           FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::bigint[], $7::uuid[],
                       $11::text[], $12::text[])
                  WITH ORDINALITY AS i(stripe_event_id, event_type, status, livemode, api_version, created, lock_token,
                                       source, account_id, n)
           JOIN jsonb_array_elements($8::jsonb) WITH ORDINALITY AS p(payload, n) USING (n)
       ), event AS (
         INSERT INTO subscription_events
           (stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, processed_at,
            source, account_id)
         SELECT stripe_event_id, event_type, status, payload, livemode, api_version, to_timestamp(created),
                CASE WHEN status = 'ignored' THEN now() END, source, account_id
           FROM input
         ON CONFLICT (stripe_event_id) DO NOTHING
         RETURNING id, stripe_event_id, status
       ), queued AS (
         INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, claims, lock_token, locked_by, next_retry_at)
         SELECT event.id, event.stripe_event_id, input.event_type, CASE WHEN input.lock_token IS NULL THEN 0 ELSE 1 END,
                input.lock_token, CASE WHEN input.lock_token IS NOT NULL THEN $9 END,
                clock_timestamp() + CASE WHEN input.lock_token IS NULL THEN 0 ELSE $10 END * interval '1 millisecond'
           FROM event
           JOIN input ON input.stripe_event_id = event.stripe_event_id
          WHERE event.status = 'pending'
       ), counted AS (
         SELECT webhook_count_events((SELECT count(*) FROM event WHERE status = 'ignored')::integer, 0)
       )
       SELECT id, stripe_event_id FROM event, counted`,
      [
        events.map((e) => e.event.id),
        events.map((e) => e.event.type),
        events.map((e) => e.status),
        events.map((e) => e.event.livemode),
        events.map((e) => e.event.apiVersion),
        events.map((e) => e.event.created),
        events.map((e) => e.claim?.token ?? null),
        `[${events.map((e) => e.rawPayload).join(',')}]`,
        this.replicaOf(events),
        events.find((e) => e.claim)?.claim?.leaseMs ?? 0,
        events.map((e) => e.source ?? 'webhook'),
        events.map((e) => e.event.account),
      ],
      'swp_insert_events',
    );
    const ids = new Map(rows.map((r) => [r.stripe_event_id, r.id]));
    return events.map((e) => ids.get(e.event.id) ?? null);
  }

  /**
   * Stores an event fetched from Stripe's API within a handler's transaction, with its queue row (due
   * now, held by no replica), unless its id is already stored (ON CONFLICT DO NOTHING, which waits for
   * a concurrent insert of it to commit or roll back). Returns whether it was stored.
   */
  async insertFetched(
    tx: Executor,
    event: StripeEvent,
    source: EventSource,
    accountId: string | null,
  ): Promise<boolean> {
    const { rows } = await sql<{ id: string }>(
      tx,
      `WITH event AS (
         INSERT INTO subscription_events
           (stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, source, account_id)
         VALUES ($1, $2, 'pending', $3, $4, $5, to_timestamp($6), $7, $8)
         ON CONFLICT (stripe_event_id) DO NOTHING
         RETURNING id, stripe_event_id, event_type
       )
       INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
       SELECT id, stripe_event_id, event_type, 0, clock_timestamp() FROM event
       RETURNING event_id`,
      [
        event.id,
        event.type,
        JSON.stringify(event.payload),
        event.livemode,
        event.apiVersion,
        event.created,
        source,
        accountId,
      ],
      'swp_insert_fetched',
    );
    return rows.length > 0;
  }

  /** The replica that pre-claims rows of this insert (one replica inserts them all). */
  private replicaOf(events: NewEvent[]): string | null {
    return events.find((e) => e.claim)?.claim?.lockedBy ?? null;
  }

  /**
   * An event's state (with its payload if asked); `attempts` and `last_error` come from its queue
   * row while it is queued.
   */
  async findEvent(stripeEventId: string, withPayload = false): Promise<(EventRecord & { payload?: unknown }) | null> {
    const { rows } = await sql<EventRecord & { payload?: unknown }>(
      this.db,
      `SELECT e.stripe_event_id, e.event_type, e.status,
              COALESCE(q.attempts, e.attempts) AS attempts,
              COALESCE(q.last_error, e.last_error) AS last_error,
              e.received_at, e.processed_at,
              CASE WHEN $2 THEN e.payload END AS payload
         FROM subscription_events e
         LEFT JOIN webhook_retry_queue q ON q.event_id = e.id
        WHERE e.stripe_event_id = $1`,
      [stripeEventId, withPayload],
    );
    const event = rows[0];
    if (event && !withPayload) {
      delete event.payload;
    }
    return event ?? null;
  }

  /** Claims up to `limit` due rows for this replica (see CLAIM_DUE_SQL), with their payloads. */
  async claimDue(limit: number, lockedBy: string, leaseMs: number): Promise<ClaimedRow[]> {
    const { rows } = await sql<ClaimedDbRow>(this.db, CLAIM_DUE_SQL, [limit, lockedBy, leaseMs], 'swp_claim_due');
    return rows.map((r) => ({
      eventId: r.event_id,
      token: r.lock_token,
      attempt: r.attempts + 1,
      claims: r.claims,
      eventType: r.event_type,
      stripeEventId: r.stripe_event_id,
      payload: r.payload,
    }));
  }

  /**
   * First statement of an attempt (one event or a batch): deletes the held queue rows, fenced on
   * their tokens, and bounds the transaction's statements and pauses on the server. The rows stay
   * locked until commit, so no claim can take them; a row not returned was lost and must not run.
   * Handlers look rows up by key: within the attempt their plans are cached and scans ruled out, so a
   * plan made while a table was small stays an index lookup as it grows, and is not made again per event.
   */
  async takeForAttempt(
    tx: Executor,
    rows: ClaimedRow[],
    statementTimeoutMs: number,
    idleTimeoutMs: number,
  ): Promise<Set<string>> {
    const { rows: taken } = await sql<{ event_id: string }>(
      tx,
      `WITH bounded AS (
         SELECT set_config('statement_timeout', $3, true), set_config('idle_in_transaction_session_timeout', $4, true),
                set_config('plan_cache_mode', 'auto', true), set_config('enable_seqscan', 'off', true)
       )
       DELETE FROM webhook_retry_queue q
        USING unnest($1::bigint[], $2::uuid[]) AS held(event_id, lock_token)
        WHERE q.event_id = held.event_id AND q.lock_token = held.lock_token AND EXISTS (SELECT 1 FROM bounded)
       RETURNING q.event_id`,
      [rows.map((r) => r.eventId), rows.map((r) => r.token), String(statementTimeoutMs), String(idleTimeoutMs)],
      'swp_take_for_attempt',
    );
    return new Set(taken.map((r) => r.event_id));
  }

  /**
   * Last statement of a successful attempt's transaction: the events processed (or ignored), with
   * their attempt numbers, counted for /admin/stats. Done last: while an event row is locked, a
   * duplicate delivery's insert waits for it.
   */
  async complete(tx: Executor, completions: Completion[]): Promise<void> {
    await sql(
      tx,
      `WITH completed AS (
         UPDATE subscription_events e
            SET status = done.status, attempts = done.attempt, last_error = NULL, processed_at = now()
           FROM unnest($1::bigint[], $2::text[], $3::integer[]) AS done(id, status, attempt)
          WHERE e.id = done.id
         RETURNING e.id
       )
       SELECT webhook_count_events((SELECT count(*) FROM completed)::integer, 0)`,
      [completions.map((c) => c.row.eventId), completions.map((c) => c.status), completions.map((c) => c.row.attempt)],
      'swp_complete',
    );
  }

  /**
   * After a handler failed: the run counts (claims back to 0), the row is unlocked and due in
   * `delaySeconds` by the database clock, the event records attempts and error; fenced on the token.
   * Counted for /admin/stats.
   */
  async scheduleRetry(row: ClaimedRow, error: string, delaySeconds: number): Promise<boolean> {
    const { rows } = await sql<{ id: string }>(
      this.db,
      `WITH q AS (
         UPDATE webhook_retry_queue
            SET attempts = attempts + 1, claims = 0, lock_token = NULL, locked_by = NULL, last_error = $3,
                next_retry_at = clock_timestamp() + $4 * interval '1 second'
          WHERE event_id = $1 AND lock_token = $2
         RETURNING event_id, attempts
       ), e AS (
         UPDATE subscription_events e
            SET attempts = q.attempts, last_error = $3
           FROM q
          WHERE e.id = q.event_id
         RETURNING e.id
       )
       SELECT id, webhook_count_events(0, 1) FROM e`,
      [row.eventId, row.token, error, delaySeconds],
      'swp_schedule_retry',
    );
    return rows.length > 0;
  }

  /**
   * Moves a row that used up its attempts, failed permanently or kept being claimed without a result
   * to the dead-letter queue and marks its event `dead`, in one statement, fenced on the lock token.
   * `handlerRan` counts this attempt. Returns the dead letter, or null when the lease was lost.
   */
  async deadLetter(row: ClaimedRow, error: string, handlerRan = true): Promise<DeadLetterRow | null> {
    const { rows } = await sql<DeadLetterRow>(
      this.db,
      `WITH q AS (
         DELETE FROM webhook_retry_queue
          WHERE event_id = $1 AND lock_token = $2
         RETURNING event_id, stripe_event_id, event_type, attempts + CASE WHEN $4 THEN 1 ELSE 0 END AS attempts
       ), e AS (
         UPDATE subscription_events e
            SET status = 'dead', attempts = q.attempts, last_error = $3
           FROM q
          WHERE e.id = q.event_id
         RETURNING e.id, e.event_created_at, e.account_id
       )
       INSERT INTO webhook_dead_letter_queue
         (event_id, stripe_event_id, event_type, retry_count, error, original_timestamp, account_id)
       SELECT q.event_id, q.stripe_event_id, q.event_type, q.attempts, $3, e.event_created_at, e.account_id
         FROM q JOIN e ON e.id = q.event_id
       RETURNING id, stripe_event_id, event_type, retry_count, error`,
      [row.eventId, row.token, error, handlerRan],
    );
    return rows[0] ?? null;
  }

  /**
   * Gives held rows back, due now (`uncount` takes back their claims), fenced on their tokens;
   * bounded, as it runs while the database may be silent (a late commit finds the tokens gone).
   * Returns how many rows were still held.
   */
  async release(rows: HeldRow[], uncount: boolean): Promise<number> {
    const { rowCount } = await this.db.queryWithin(
      RELEASE_TIMEOUT_MS,
      `UPDATE webhook_retry_queue q
          SET lock_token = NULL, locked_by = NULL, next_retry_at = clock_timestamp(),
              claims = CASE WHEN $3 THEN greatest(claims - 1, 0) ELSE claims END
         FROM unnest($1::bigint[], $2::uuid[]) AS held(event_id, lock_token)
        WHERE q.event_id = held.event_id AND q.lock_token = held.lock_token`,
      [rows.map((r) => r.eventId), rows.map((r) => r.token), uncount],
    );
    return rowCount ?? 0;
  }

  /** Extends the leases of held rows (a batch that failed, before its events run one by one). */
  async renewLeases(rows: HeldRow[], leaseMs: number): Promise<void> {
    await sql(
      this.db,
      `UPDATE webhook_retry_queue q
          SET next_retry_at = clock_timestamp() + $3 * interval '1 millisecond'
         FROM unnest($1::bigint[], $2::uuid[]) AS held(event_id, lock_token)
        WHERE q.event_id = held.event_id AND q.lock_token = held.lock_token`,
      [rows.map((r) => r.eventId), rows.map((r) => r.token), leaseMs],
    );
  }

  /**
   * Queue rows in the order they were queued, after the (enqueue time, event id) of `after`: a key
   * that claims and retries never change, so that pages neither repeat nor skip a row still queued.
   */
  async listPending(limit: number, after?: { enqueuedUs: string; eventId: string }): Promise<PendingRow[]> {
    const { rows } = await sql<PendingRow>(
      this.db,
      `SELECT stripe_event_id, event_type, attempts AS retry_count, next_retry_at, last_error, locked_by, enqueued_at,
              (extract(epoch FROM enqueued_at) * 1000000)::bigint::text AS enqueued_us, event_id::text AS event_key
         FROM webhook_retry_queue
        WHERE $2::bigint IS NULL
           OR (enqueued_at, event_id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::bigint)
        ORDER BY enqueued_at, event_id
        LIMIT $1`,
      [limit, after?.enqueuedUs ?? null, after?.eventId ?? null],
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
