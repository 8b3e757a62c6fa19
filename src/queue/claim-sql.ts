/**
 * The claim: up to $1 due rows, oldest due first, skipping rows another replica holds; each gets a
 * new lock token ($2 names the replica) and a lease of $3 ms, after which it is due again. A claim
 * counts in `claims`, never in `attempts`. Its own module so that the scale benchmark runs this text.
 */
export const CLAIM_DUE_SQL = `WITH due AS (
         SELECT event_id
           FROM webhook_retry_queue
          WHERE next_retry_at <= now()
          ORDER BY next_retry_at
          LIMIT $1
            FOR UPDATE SKIP LOCKED
       ), claimed AS (
         UPDATE webhook_retry_queue q
            SET claims = q.claims + 1,
                lock_token = gen_random_uuid(),
                locked_by = $2,
                next_retry_at = clock_timestamp() + $3 * interval '1 millisecond'
           FROM due
          WHERE q.event_id = due.event_id
         RETURNING q.event_id, q.lock_token, q.attempts, q.claims, q.event_type, q.stripe_event_id
       )
       SELECT c.event_id, c.lock_token, c.attempts, c.claims, c.event_type, c.stripe_event_id, e.payload
         FROM claimed c
         JOIN subscription_events e ON e.id = c.event_id`;
