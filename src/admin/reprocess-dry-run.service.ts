import { Injectable, Logger } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { storedEventFromPayload, StripeEvent } from '../common/stripe-event';
import { runWithin } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { Connection, Database } from '../database/database';
import { sql } from '../database/sql';
import { describeFailure } from '../queue/event-processor';
import { EventHandler, HandlerRegistry } from '../queue/handler-registry';
import { AuditService } from './audit.service';

export interface RowChange {
  table: string;
  key: Record<string, unknown>;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface DryRunResult {
  changes: RowChange[];
  outcome: 'processed' | 'ignored' | 'failed';
  error: string | null;
}

type Row = Record<string, unknown>;
interface KeyedRow {
  row: Row;
  key_text: string[];
}
interface TableShape {
  /** The table as regclass prints it (quoted when needed). */
  name: string;
  key: Array<{ column: string; type: string }>;
}

const MAX_ERROR_LENGTH = 2_000;

/**
 * POST /admin/events/:id/reprocess?dry_run=true: the handler runs as an attempt would, in a
 * transaction always rolled back, and what it changed is read from that transaction (README: "Dry runs").
 */
@Injectable()
export class ReprocessDryRunService {
  private readonly logger = new Logger(ReprocessDryRunService.name);
  private readonly shapes = new Map<string, TableShape>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: AppConfig,
    private readonly db: Database,
    private readonly handlers: HandlerRegistry,
    private readonly audit: AuditService,
  ) {}

  /** Audited whatever happens: the outcome, or not_found, or error. */
  async run(stripeEventId: string, actor: string): Promise<DryRunResult> {
    const turn = this.tail.then(() => this.runAlone(stripeEventId));
    this.tail = turn.catch(() => undefined);
    let result: string = 'error';
    let details: Record<string, unknown> | undefined;
    try {
      const outcome = await turn;
      result = outcome.outcome;
      details = { changes: outcome.changes.length, error: outcome.error };
      return outcome;
    } catch (error) {
      if (error instanceof AppError && error.code === ErrorCode.NotFound) {
        result = 'not_found';
      }
      throw error;
    } finally {
      await this.db.transaction((manager) =>
        this.audit.record(manager, {
          actor,
          action: 'event.reprocess_dry_run',
          target: stripeEventId,
          result,
          details,
        }),
      );
    }
  }

  private async runAlone(stripeEventId: string): Promise<DryRunResult> {
    const { rows } = await sql<{ payload: unknown }>(
      this.db,
      'SELECT payload FROM subscription_events WHERE stripe_event_id = $1',
      [stripeEventId],
    );
    if (rows.length === 0) {
      throw new AppError(ErrorCode.NotFound, `No event ${stripeEventId} has been stored.`);
    }
    let event: StripeEvent;
    try {
      event = storedEventFromPayload(rows[0].payload);
    } catch (error) {
      return {
        changes: [],
        outcome: 'failed',
        error: `stored payload is not a Stripe event: ${describeFailure(error)}`,
      };
    }
    // As in an attempt: an event of the other mode is ignored.
    const otherMode = this.config.stripeLivemode !== undefined && event.livemode !== this.config.stripeLivemode;
    const handler = otherMode ? undefined : this.handlers.get(event.type);
    if (!handler) {
      return { changes: [], outcome: 'ignored', error: null };
    }
    return this.runHandler(event, handler);
  }

  private async runHandler(event: StripeEvent, handler: EventHandler): Promise<DryRunResult> {
    const timeoutMs = this.config.handlerTimeoutMs;
    const connection = await this.db.connect(timeoutMs);
    try {
      await connection.query('BEGIN');
      await sql(
        connection,
        `SELECT set_config('statement_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`,
        [String(timeoutMs), String(timeoutMs * 2)],
      );
      try {
        // Bounded in JavaScript too: past the limit its connection is dropped, so it cannot go on.
        await runWithin(
          () => handler(event, connection, { afterCommit: () => undefined, dryRun: true }),
          timeoutMs,
          () => new Error(`handler timed out after ${timeoutMs} ms`),
          () => connection.destroy(),
        );
      } catch (error) {
        connection.destroy();
        return { changes: [], outcome: 'failed', error: describeFailure(error).slice(0, MAX_ERROR_LENGTH) };
      }
      const changes = await this.changes(connection);
      return { changes, outcome: 'processed', error: null };
    } finally {
      if (!connection.isReleased) {
        try {
          await connection.query('ROLLBACK');
          connection.release();
        } catch {
          connection.destroy();
        }
      }
    }
  }

  /** The rows this transaction inserted, updated or deleted, with their committed state. */
  private async changes(runner: Connection): Promise<RowChange[]> {
    const { rows: xids } = await sql<{ xid: string | null }>(
      runner,
      'SELECT pg_current_xact_id_if_assigned()::text AS xid',
    );
    const xid = xids[0].xid;
    if (xid === null) {
      return []; // wrote nothing
    }
    const { rows: written } = await sql<{ relid: string; deleted: string }>(
      runner,
      `SELECT relid::text, n_tup_del::text AS deleted
         FROM pg_stat_xact_user_tables
        WHERE n_tup_ins + n_tup_upd + n_tup_del > 0
        ORDER BY relname`,
    );
    const changes: RowChange[] = [];
    for (const { relid, deleted } of written) {
      const shape = await this.shape(runner, relid);
      if (!shape) {
        continue;
      }
      const keyText = shape.key.map((k) => `${quote(k.column)}::text`).join(', ');
      // xid8 to xid: the low 32 bits, as stored in xmin and xmax.
      const { rows: after } = await sql<KeyedRow>(
        runner,
        `SELECT to_jsonb(t) AS row, ARRAY[${keyText}] AS key_text FROM ${shape.name} t WHERE t.xmin = $1::xid8::xid`,
        [xid],
      );
      const before = await this.committed(shape, after);
      for (const { row, key_text } of after) {
        const old = before.get(key_text.join('\u0000')) ?? null;
        if (old === null || JSON.stringify(old) !== JSON.stringify(row)) {
          changes.push({ table: shape.name, key: keyOf(shape, row), before: old, after: row });
        }
      }
      if (Number(deleted) > 0) {
        changes.push(...(await this.deletions(runner, shape, xid, after)));
      }
    }
    return changes;
  }

  /** Rows of `shape` with the keys of `rows`, as committed (read on another connection). */
  private async committed(shape: TableShape, rows: KeyedRow[]): Promise<Map<string, Row>> {
    if (rows.length === 0) {
      return new Map();
    }
    const columns = shape.key.map((k) => `t.${quote(k.column)}`).join(', ');
    const arrays = shape.key.map((k, i) => `$${i + 1}::text[]::${k.type}[]`).join(', ');
    const { rows: found } = await sql<KeyedRow>(
      this.db,
      `SELECT to_jsonb(t) AS row, ARRAY[${shape.key.map((k) => `t.${quote(k.column)}::text`).join(', ')}] AS key_text
         FROM ${shape.name} t
        WHERE (${columns}) IN (SELECT * FROM unnest(${arrays}))`,
      shape.key.map((_, i) => rows.map((r) => r.key_text[i])),
    );
    return new Map(found.map((f) => [f.key_text.join('\u0000'), f.row]));
  }

  /**
   * Rows this transaction deleted: committed rows whose xmax is its xid (seen from another
   * connection; an update or a row lock also sets it) that this transaction no longer sees.
   */
  private async deletions(
    runner: Connection,
    shape: TableShape,
    xid: string,
    written: KeyedRow[],
  ): Promise<RowChange[]> {
    const keyText = shape.key.map((k) => `t.${quote(k.column)}::text`).join(', ');
    const { rows: touched } = await sql<KeyedRow>(
      this.db,
      `SELECT to_jsonb(t) AS row, ARRAY[${keyText}] AS key_text FROM ${shape.name} t WHERE t.xmax = $1::xid8::xid`,
      [xid],
    );
    const stillThere = new Set(written.map((w) => w.key_text.join('\u0000')));
    const candidates = touched.filter((t) => !stillThere.has(t.key_text.join('\u0000')));
    if (candidates.length === 0) {
      return [];
    }
    const visible = await sql<{ key_text: string[] }>(
      runner,
      `SELECT ARRAY[${keyText}] AS key_text FROM ${shape.name} t
        WHERE (${shape.key.map((k) => `t.${quote(k.column)}`).join(', ')})
           IN (SELECT * FROM unnest(${shape.key.map((k, i) => `$${i + 1}::text[]::${k.type}[]`).join(', ')}))`,
      shape.key.map((_, i) => candidates.map((c) => c.key_text[i])),
    );
    const locked = new Set(visible.rows.map((v) => v.key_text.join('\u0000')));
    return candidates
      .filter((c) => !locked.has(c.key_text.join('\u0000')))
      .map((c) => ({ table: shape.name, key: keyOf(shape, c.row), before: c.row, after: null }));
  }

  /** The table's name and primary key (cached); null for a table without one. */
  private async shape(runner: Connection, relid: string): Promise<TableShape | null> {
    const cached = this.shapes.get(relid);
    if (cached) {
      return cached;
    }
    const { rows } = await sql<{ name: string; column: string; type: string }>(
      runner,
      `SELECT i.indrelid::regclass::text AS name, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
        WHERE i.indrelid = $1::oid AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      [relid],
    );
    if (rows.length === 0) {
      this.logger.warn({ table: relid }, 'a handler wrote to a table without a primary key: not listed by dry runs');
      return null;
    }
    const shape = { name: rows[0].name, key: rows.map((r) => ({ column: r.column, type: r.type })) };
    this.shapes.set(relid, shape);
    return shape;
  }
}

function keyOf(shape: TableShape, row: Row): Record<string, unknown> {
  return Object.fromEntries(shape.key.map((k) => [k.column, row[k.column]]));
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
