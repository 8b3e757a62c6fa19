import { Injectable } from '@nestjs/common';
import type { StripeEvent } from '../common/stripe-event';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';

/** The platform's own account in `reconcile_checkpoints` and `reconcile_runs`; connected accounts are `acct_…`. */
export const PLATFORM = '';
/** The event that stops the sweep of a connected account. */
export const DEAUTHORIZED_EVENT = 'account.application.deauthorized';

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

/** See ReconcileRepository.accountsToSweep: $1 the window in seconds, $2 DEAUTHORIZED_EVENT. */
export const ACCOUNTS_TO_SWEEP_SQL = `WITH RECURSIVE account AS (
    (SELECT account_id FROM subscription_events WHERE account_id IS NOT NULL ORDER BY account_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.account_id FROM subscription_events e
             WHERE e.account_id > account.account_id ORDER BY e.account_id LIMIT 1)
      FROM account WHERE account.account_id IS NOT NULL
  ), seen AS (
    SELECT account_id FROM account
     WHERE account_id IS NOT NULL
       AND (SELECT max(e.received_at) FROM subscription_events e WHERE e.account_id = account.account_id)
           >= now() - $1 * interval '1 second'
  ), resumed AS (
    UPDATE reconcile_checkpoints c SET deauthorized_at = NULL, updated_at = now()
      FROM seen
     WHERE c.account_id = seen.account_id AND c.deauthorized_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM subscription_events e
                    WHERE e.account_id = c.account_id AND e.event_created_at > c.deauthorized_at
                      AND e.event_type <> $2)
    RETURNING c.account_id
  )
  SELECT account_id FROM seen
   WHERE account_id IN (SELECT account_id FROM resumed)
      OR NOT EXISTS (SELECT 1 FROM reconcile_checkpoints c
                      WHERE c.account_id = seen.account_id AND c.deauthorized_at IS NOT NULL)
  ORDER BY account_id`;

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
    return (await this.states([accountId])).get(accountId) ?? null;
  }

  /** The checkpoint rows of these accounts (an account never swept has none). */
  async states(accountIds: string[]): Promise<Map<string, ReconcileState>> {
    const { rows } = await sql<ReconcileState & { accountId: string }>(
      this.db,
      `SELECT account_id AS "accountId", checkpoint_at AS "checkpointAt", last_outcome AS "lastOutcome",
              last_failure_kind AS "lastFailureKind", last_error AS "lastError", last_success_at AS "lastSuccessAt"
         FROM reconcile_checkpoints WHERE account_id = ANY($1::text[])`,
      [accountIds],
    );
    return new Map(rows.map(({ accountId, ...state }) => [accountId, state]));
  }

  /**
   * The connected accounts a sweep covers: those with an event received in the last `windowSeconds`,
   * but not one deauthorized since. An account deauthorized earlier that has an event created after
   * its deauthorization (it was authorized again) is resumed here: its mark is cleared. Each distinct
   * account is found by one probe of subscription_events_account_idx (a loose index scan), and so is
   * its newest event, however many events it has.
   */
  async accountsToSweep(windowSeconds: number): Promise<string[]> {
    const { rows } = await sql<{ account_id: string }>(this.db, ACCOUNTS_TO_SWEEP_SQL, [
      windowSeconds,
      DEAUTHORIZED_EVENT,
    ]);
    return rows.map((r) => r.account_id);
  }

  /**
   * Stops sweeping a connected account that deauthorized the platform, as of the deauthorization's
   * `created` (the latest one wins, whatever order they are handled in). In the handler's transaction.
   */
  async markDeauthorized(manager: Executor, accountId: string, at: Date | null): Promise<void> {
    await sql(
      manager,
      `INSERT INTO reconcile_checkpoints AS c (account_id, deauthorized_at, updated_at)
       VALUES ($1, COALESCE($2, now()), now())
       ON CONFLICT (account_id) DO UPDATE
          SET deauthorized_at = GREATEST(c.deauthorized_at, EXCLUDED.deauthorized_at), updated_at = now()`,
      [accountId, at],
    );
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
   * run's counters move in the same statement. `accountId` is the connected account listed (null: the
   * platform). Returns the events stored.
   */
  async storePage(
    runId: string,
    events: StripeEvent[],
    ignored: (event: StripeEvent) => boolean,
    accountId: string | null = null,
  ): Promise<InsertedEvent[]> {
    const { rows } = await sql<InsertedEvent>(
      this.db,
      `WITH page AS (
         SELECT * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::boolean[], $6::text[], $7::bigint[], $8::boolean[])
                AS p(stripe_event_id, event_type, payload, livemode, api_version, created, ignored)
       ), event AS (
         INSERT INTO subscription_events
           (stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, source, processed_at,
            account_id)
         SELECT stripe_event_id, event_type, CASE WHEN ignored THEN 'ignored' ELSE 'pending' END, payload, livemode,
                api_version, to_timestamp(created), 'reconcile', CASE WHEN ignored THEN now() END, $9::text
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
        accountId,
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
