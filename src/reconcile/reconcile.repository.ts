import { Injectable } from '@nestjs/common';
import type { StripeEvent } from '../common/stripe-event';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';

/** The platform's own account in `reconcile_checkpoints` and `reconcile_runs` (connected accounts come later). */
export const PLATFORM = '';

export type RunTrigger = 'schedule' | 'admin';
export type RunStatus = 'running' | 'succeeded' | 'failed';
export type FailureKind = 'key_refused' | 'failing';

export interface ReconcileState {
  checkpointAt: Date | null;
  lastOutcome: 'succeeded' | 'failed' | null;
  lastFailureKind: FailureKind | null;
  lastError: string | null;
  lastSuccessAt: Date | null;
}

export interface NewRun {
  trigger: RunTrigger;
  actor: string | null;
  /** The cron tick of a scheduled run. */
  scheduledFor: Date | null;
  since: Date;
  until: Date;
  dryRun: boolean;
}

/** A run as the admin API shows it. */
export interface RunRecord {
  id: string;
  trigger: RunTrigger;
  actor: string | null;
  since: Date;
  until: Date;
  dry_run: boolean;
  status: RunStatus;
  listed: number;
  recovered: number;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

export interface InsertedEvent {
  stripe_event_id: string;
  event_type: string;
  status: 'pending' | 'ignored';
}

const RUN_COLUMNS = `id, trigger, actor, since, until, dry_run, status, listed, recovered, error, started_at, finished_at`;

/** SQL of the reconciliation sweep: its checkpoint, its runs, and the events it stores. */
@Injectable()
export class ReconcileRepository {
  constructor(private readonly db: Database) {}

  /** The database's clock, in whole seconds (Stripe's `created` unit): every replica agrees on it. */
  async now(): Promise<number> {
    const { rows } = await sql<{ now: string }>(this.db, `SELECT floor(extract(epoch FROM now()))::bigint AS now`);
    return Number(rows[0].now);
  }

  async state(accountId = PLATFORM): Promise<ReconcileState | null> {
    const { rows } = await sql<ReconcileState>(
      this.db,
      `SELECT checkpoint_at AS "checkpointAt", last_outcome AS "lastOutcome", last_failure_kind AS "lastFailureKind",
              last_error AS "lastError", last_success_at AS "lastSuccessAt"
         FROM reconcile_checkpoints WHERE account_id = $1`,
      [accountId],
    );
    return rows[0] ?? null;
  }

  /**
   * Records a new run, `running`. A scheduled run names its cron tick: when another replica already
   * ran that tick, nothing is recorded and null is returned. Call only while holding the sweep lock.
   */
  async createRun(manager: Executor, run: NewRun, accountId = PLATFORM): Promise<string | null> {
    const { rows } = await sql<{ id: string }>(
      manager,
      `INSERT INTO reconcile_runs (account_id, trigger, actor, scheduled_for, since, until, dry_run)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (account_id, scheduled_for) WHERE scheduled_for IS NOT NULL DO NOTHING
       RETURNING id`,
      [accountId, run.trigger, run.actor, run.scheduledFor, run.since, run.until, run.dryRun],
    );
    return rows[0]?.id ?? null;
  }

  /**
   * Runs left `running` by a replica that stopped or lost its connection mid-sweep. Only the holder
   * of the sweep lock calls this, so no run it marks is still going.
   */
  async failAbandonedRuns(): Promise<number> {
    const { affected } = await sql(
      this.db,
      `UPDATE reconcile_runs
          SET status = 'failed', finished_at = now(),
              error = 'interrupted: the replica running it stopped or lost its database connection'
        WHERE status = 'running'`,
    );
    return affected;
  }

  /**
   * Stores the page's events that are not stored yet, with `source` reconcile, and queues those to
   * be handled (due now, held by no replica), in one statement: an event and its queue row exist
   * together or not at all, and an event already stored (delivered, or found by an earlier sweep)
   * is not touched (ON CONFLICT DO NOTHING, which also waits for a delivery being committed). The
   * run's counters move in the same statement. Returns the events stored.
   */
  async storePage(
    runId: string,
    events: StripeEvent[],
    ignored: (event: StripeEvent) => boolean,
  ): Promise<InsertedEvent[]> {
    const { rows } = await sql<InsertedEvent>(
      this.db,
      `WITH page AS (
         SELECT * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::boolean[], $6::text[], $7::bigint[], $8::boolean[])
                AS p(stripe_event_id, event_type, payload, livemode, api_version, created, ignored)
       ), event AS (
         INSERT INTO subscription_events
           (stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, source, processed_at)
         SELECT stripe_event_id, event_type, CASE WHEN ignored THEN 'ignored' ELSE 'pending' END, payload, livemode,
                api_version, to_timestamp(created), 'reconcile', CASE WHEN ignored THEN now() END
           FROM page
         ON CONFLICT (stripe_event_id) DO NOTHING
         RETURNING id, stripe_event_id, event_type, status
       ), queued AS (
         INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
         SELECT id, stripe_event_id, event_type, 0, now() FROM event WHERE status = 'pending'
       ), run AS (
         UPDATE reconcile_runs
            SET listed = listed + cardinality($2::text[]), recovered = recovered + (SELECT count(*) FROM event)
          WHERE id = $1
       ), counted AS (
         SELECT webhook_count_events((SELECT count(*) FROM event WHERE status = 'ignored')::integer, 0)
       )
       SELECT stripe_event_id, event_type, status FROM event, counted`,
      [
        runId,
        events.map((e) => e.id),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.payload)),
        events.map((e) => e.livemode),
        events.map((e) => e.apiVersion),
        events.map((e) => e.created),
        events.map(ignored),
      ],
      'swp_reconcile_store_page',
    );
    return rows;
  }

  /** A dry run's page: how many of these events are not stored (nothing is written but the run's counters). */
  async countMissing(runId: string, stripeEventIds: string[]): Promise<number> {
    const { rows } = await sql<{ missing: number }>(
      this.db,
      `WITH missing AS (
         SELECT id FROM unnest($2::text[]) AS ids(id)
          WHERE NOT EXISTS (SELECT 1 FROM subscription_events e WHERE e.stripe_event_id = ids.id)
       ), run AS (
         UPDATE reconcile_runs
            SET listed = listed + cardinality($2::text[]), recovered = recovered + (SELECT count(*) FROM missing)
          WHERE id = $1
       )
       SELECT count(*)::int AS missing FROM missing`,
      [runId, stripeEventIds],
    );
    return rows[0].missing;
  }

  /** Counts listed events a run could not store (see storePage's callers). */
  async addListed(runId: string, n: number): Promise<void> {
    await sql(this.db, 'UPDATE reconcile_runs SET listed = listed + $2 WHERE id = $1', [runId, n]);
  }

  async finishRun(
    manager: Executor,
    runId: string,
    status: 'succeeded' | 'failed',
    error: string | null,
  ): Promise<void> {
    await sql(manager, `UPDATE reconcile_runs SET status = $2, error = $3, finished_at = now() WHERE id = $1`, [
      runId,
      status,
      error,
    ]);
  }

  /**
   * Records how a sweep that stores events ended, and moves the checkpoint (never backwards) when
   * it listed a range that covers it. Called by the holder of the sweep lock.
   */
  async recordOutcome(
    manager: Executor,
    outcome: { succeeded: true; checkpointAt: Date | null } | { succeeded: false; kind: FailureKind; error: string },
    accountId = PLATFORM,
  ): Promise<void> {
    await sql(
      manager,
      `INSERT INTO reconcile_checkpoints AS c
         (account_id, checkpoint_at, last_outcome, last_failure_kind, last_error, last_success_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 = 'succeeded' THEN now() END, now())
       ON CONFLICT (account_id) DO UPDATE
          SET checkpoint_at = GREATEST(c.checkpoint_at, EXCLUDED.checkpoint_at),
              last_outcome = EXCLUDED.last_outcome,
              last_failure_kind = EXCLUDED.last_failure_kind,
              last_error = EXCLUDED.last_error,
              last_success_at = COALESCE(EXCLUDED.last_success_at, c.last_success_at),
              updated_at = now()`,
      outcome.succeeded
        ? [accountId, outcome.checkpointAt, 'succeeded', null, null]
        : [accountId, null, 'failed', outcome.kind, outcome.error],
    );
  }

  /** Newest first; after the (started_at, id) of `after`, when given. */
  async listRuns(limit: number, after?: { startedAt: string; id: string }): Promise<RunRecord[]> {
    const params: unknown[] = [limit];
    let where = '';
    if (after) {
      params.push(after.startedAt, after.id);
      where = 'WHERE (started_at, id) < ($2::timestamptz, $3::uuid)';
    }
    const { rows } = await sql<RunRecord>(
      this.db,
      `SELECT ${RUN_COLUMNS} FROM reconcile_runs ${where} ORDER BY started_at DESC, id DESC LIMIT $1`,
      params,
    );
    return rows;
  }

  async findRun(id: string): Promise<RunRecord | null> {
    const { rows } = await sql<RunRecord>(this.db, `SELECT ${RUN_COLUMNS} FROM reconcile_runs WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }
}
