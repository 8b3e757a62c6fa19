import { Injectable } from '@nestjs/common';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';

export interface DeadLetterItem {
  id: string;
  stripe_event_id: string;
  event_type: string;
  retry_count: number;
  error: string | null;
  original_timestamp: Date | null;
  created_at: Date;
}

export interface DeadLetterDetail extends DeadLetterItem {
  payload: unknown;
  resolution: 'replayed' | 'discarded' | null;
  resolved_at: Date | null;
  resolved_by: string | null;
}

export interface DeadLetterFilter {
  ids?: string[];
  eventType?: string;
  failedAfter?: Date;
  failedBefore?: Date;
}

export type ResolveResult = 'done' | 'not_found' | 'already_replayed' | 'already_discarded';

/**
 * The dead-letter queue. Replays and discards are single statements guarded by
 * `resolution IS NULL`: of two concurrent requests for one dead letter, the second finds it
 * resolved (it waits for the first's row lock, then re-checks) and changes nothing.
 */
@Injectable()
export class DeadLettersRepository {
  constructor(private readonly db: Database) {}

  /** Open dead letters (of a type, of a connected account), newest first; the (created_at, id) after `cursor`, if given. */
  async listOpen(
    filter: { eventType?: string; account?: string },
    limit: number,
    after?: { createdAt: string; id: string },
  ): Promise<DeadLetterItem[]> {
    const params: unknown[] = [limit];
    const where = ['resolution IS NULL'];
    if (filter.eventType !== undefined) {
      params.push(filter.eventType);
      where.push(`event_type = $${params.length}`);
    }
    if (filter.account !== undefined) {
      params.push(filter.account);
      where.push(`account_id = $${params.length}`);
    }
    if (after) {
      params.push(after.createdAt, after.id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    const { rows } = await sql<DeadLetterItem>(
      this.db,
      `SELECT id, stripe_event_id, event_type, retry_count, error, original_timestamp, created_at
         FROM webhook_dead_letter_queue
        WHERE ${where.join(' AND ')}
        ORDER BY created_at DESC, id DESC
        LIMIT $1`,
      params,
    );
    return rows;
  }

  async find(id: string): Promise<DeadLetterDetail | null> {
    const { rows } = await sql<DeadLetterDetail>(
      this.db,
      `SELECT d.id, d.stripe_event_id, d.event_type, d.retry_count, d.error, d.original_timestamp, d.created_at,
              e.payload, d.resolution, d.resolved_at, d.resolved_by
         FROM webhook_dead_letter_queue d
         JOIN subscription_events e ON e.id = d.event_id
        WHERE d.id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  /**
   * Puts dead letters back in the queue, due now, with attempts reset to 0, and marks them replayed
   * (by `actor`), in one statement. Picks the oldest matching open ones first, at most `limit`,
   * skipping any another request is resolving at this moment. Returns the replayed ids.
   */
  async replay(manager: Executor, filter: DeadLetterFilter, limit: number, actor: string): Promise<string[]> {
    const { clause, params } = filterClause(filter, 3);
    const { rows } = await sql<{ id: string }>(
      manager,
      `WITH picked AS (
         SELECT id FROM webhook_dead_letter_queue
          WHERE resolution IS NULL ${clause}
          ORDER BY created_at, id
          LIMIT $1
            FOR UPDATE SKIP LOCKED
       ), resolved AS (
         UPDATE webhook_dead_letter_queue d
            SET resolution = 'replayed', resolved_at = now(), resolved_by = $2
           FROM picked
          WHERE d.id = picked.id
         RETURNING d.id, d.event_id, d.stripe_event_id, d.event_type
       ), events AS (
         UPDATE subscription_events e
            SET status = 'pending', attempts = 0, last_error = NULL, processed_at = NULL
           FROM resolved
          WHERE e.id = resolved.event_id
       ), queued AS (
         INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
         SELECT event_id, stripe_event_id, event_type, 0, now() FROM resolved
       )
       SELECT id FROM resolved`,
      [limit, actor, ...params],
    );
    return rows.map((r) => r.id);
  }

  /** How many open dead letters a replay with this filter would take (at most `limit`). */
  async countReplayable(filter: DeadLetterFilter, limit: number): Promise<number> {
    const { clause, params } = filterClause(filter, 2);
    const { rows } = await sql<{ n: string }>(
      this.db,
      `SELECT count(*) AS n FROM (
         SELECT 1 FROM webhook_dead_letter_queue WHERE resolution IS NULL ${clause} LIMIT $1
       ) matching`,
      [limit, ...params],
    );
    return Number(rows[0].n);
  }

  /** Replays one dead letter, or says why not. */
  async replayOne(manager: Executor, id: string, actor: string): Promise<ResolveResult> {
    const replayed = await this.replayExact(manager, id, actor);
    return replayed ? 'done' : this.whyNot(manager, id);
  }

  /**
   * Discards a dead letter: it stays in the table (marked discarded, by `actor`) and its event
   * becomes `discarded`; nothing runs again.
   */
  async discard(manager: Executor, id: string, actor: string): Promise<ResolveResult> {
    const { rows } = await sql(
      manager,
      `WITH resolved AS (
         UPDATE webhook_dead_letter_queue
            SET resolution = 'discarded', resolved_at = now(), resolved_by = $2
          WHERE id = $1 AND resolution IS NULL
         RETURNING event_id
       )
       UPDATE subscription_events e SET status = 'discarded'
         FROM resolved WHERE e.id = resolved.event_id
       RETURNING e.id`,
      [id, actor],
    );
    return rows.length > 0 ? 'done' : this.whyNot(manager, id);
  }

  /** Unlike a bulk replay, a replay by id waits for a concurrent one instead of skipping it. */
  private async replayExact(manager: Executor, id: string, actor: string): Promise<boolean> {
    const { rows } = await sql(
      manager,
      `WITH resolved AS (
         UPDATE webhook_dead_letter_queue
            SET resolution = 'replayed', resolved_at = now(), resolved_by = $2
          WHERE id = $1 AND resolution IS NULL
         RETURNING event_id, stripe_event_id, event_type
       ), events AS (
         UPDATE subscription_events e
            SET status = 'pending', attempts = 0, last_error = NULL, processed_at = NULL
           FROM resolved
          WHERE e.id = resolved.event_id
       )
       INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
       SELECT event_id, stripe_event_id, event_type, 0, now() FROM resolved
       RETURNING event_id`,
      [id, actor],
    );
    return rows.length > 0;
  }

  private async whyNot(manager: Executor, id: string): Promise<ResolveResult> {
    const { rows } = await sql<{ resolution: string }>(
      manager,
      'SELECT resolution FROM webhook_dead_letter_queue WHERE id = $1',
      [id],
    );
    if (rows.length === 0) {
      return 'not_found';
    }
    return rows[0].resolution === 'discarded' ? 'already_discarded' : 'already_replayed';
  }
}

/** The optional filters as SQL, numbered from $`first`; always parameterised. */
function filterClause(filter: DeadLetterFilter, first: number): { clause: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (condition: (n: number) => string, value: unknown): void => {
    params.push(value);
    parts.push(condition(first + params.length - 1));
  };
  if (filter.ids !== undefined) {
    add((n) => `id = ANY($${n}::uuid[])`, filter.ids);
  }
  if (filter.eventType !== undefined) {
    add((n) => `event_type = $${n}`, filter.eventType);
  }
  if (filter.failedAfter !== undefined) {
    add((n) => `created_at >= $${n}`, filter.failedAfter);
  }
  if (filter.failedBefore !== undefined) {
    add((n) => `created_at < $${n}`, filter.failedBefore);
  }
  return { clause: parts.map((p) => `AND ${p}`).join(' '), params };
}
