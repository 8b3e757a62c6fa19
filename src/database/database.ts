import { Logger } from '@nestjs/common';
import { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { isDatabaseUnavailable } from '../common/database-errors';

/** Runs statements: the pool (each statement on a connection of its own) or one checked-out connection. */
export interface Executor {
  query<T extends QueryResultRow = QueryResultRow>(
    text: string,
    params?: unknown[],
    name?: string,
  ): Promise<QueryResult<T>>;
}

export interface DatabaseSettings {
  url: string;
  poolSize: number;
  /** Client-side bound of every statement: past it the statement fails and its connection is destroyed. */
  statementTimeoutMs: number;
  /** Shown in pg_stat_activity, so that operators can tell replicas and tools apart. */
  applicationName?: string;
}

/**
 * Asked of every connection at start-up. Hot statements are named prepared statements, and a generic
 * plan cached while a table was nearly empty would stay a sequential scan until the next ANALYZE.
 */
export const CONNECTION_OPTIONS = '-c plan_cache_mode=force_custom_plan';
/**
 * Waiting for a pooled connection (or opening one) fails after this, or after the statement bound
 * if that is shorter, so that a webhook gets 503 in seconds.
 */
const CONNECT_TIMEOUT_MS = 5_000;
/** A silent peer is noticed by the kernel after this much idle time (TCP keepalive's first probe). */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/** A statement the database did not answer in time; its connection was destroyed. */
export class StatementTimeoutError extends Error {
  /** Read by isDatabaseUnavailable: no answer in time is an outage, not a fault of the statement. */
  readonly code = 'ETIMEDOUT';

  constructor(timeoutMs: number) {
    super(`the database did not answer within ${timeoutMs} ms`);
    this.name = 'StatementTimeoutError';
  }
}

/**
 * The service's one connection pool (pg), owned here so that every statement is bounded on the client
 * and a connection whose statement timed out or lost its server is destroyed, never lent out again.
 * TypeORM is used for migrations only (see migrator.ts).
 */
export class Database implements Executor {
  private readonly logger = new Logger(Database.name);
  private readonly pool: Pool;
  /** Server process ids, read once per physical connection (pg_terminate_backend needs them). */
  private readonly processIds = new WeakMap<PoolClient, number>();
  readonly statementTimeoutMs: number;

  constructor(settings: DatabaseSettings) {
    this.statementTimeoutMs = settings.statementTimeoutMs;
    this.pool = new Pool({
      connectionString: settings.url,
      max: settings.poolSize,
      application_name: settings.applicationName ?? 'stripe-webhook-processor',
      options: CONNECTION_OPTIONS,
      connectionTimeoutMillis: Math.min(CONNECT_TIMEOUT_MS, settings.statementTimeoutMs),
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    });
    // A connection can fail while idle in the pool or between statements (the server restarting, a
    // reset): the failure surfaces on its next statement; unheard, the event would crash the process.
    this.pool.on('error', (error) => this.logger.warn({ error: error.message }, 'idle database connection failed'));
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  /** One statement on a pooled connection, within the statement bound. */
  query<T extends QueryResultRow = QueryResultRow>(
    text: string,
    params: unknown[] = [],
    name?: string,
  ): Promise<QueryResult<T>> {
    return this.queryWithin<T>(this.statementTimeoutMs, text, params, name);
  }

  /** One statement with a bound of its own (probes: shorter than the statement bound). */
  async queryWithin<T extends QueryResultRow = QueryResultRow>(
    timeoutMs: number,
    text: string,
    params: unknown[] = [],
    name?: string,
  ): Promise<QueryResult<T>> {
    const connection = await this.connect(timeoutMs);
    try {
      return await connection.query<T>(text, params, name);
    } finally {
      connection.release();
    }
  }

  /** A connection of the pool for several statements; `release()` it (it is destroyed if it failed). */
  async connect(statementTimeoutMs = this.statementTimeoutMs): Promise<Connection> {
    const client = await this.pool.connect();
    let processId = this.processIds.get(client);
    if (processId === undefined) {
      const connection = new Connection(client, statementTimeoutMs, 0);
      try {
        const { rows } = await connection.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        processId = rows[0].pid;
      } catch (error) {
        connection.release();
        throw error;
      }
      this.processIds.set(client, processId);
    }
    return new Connection(client, statementTimeoutMs, processId);
  }

  /**
   * Runs `work` in a transaction on one connection. On any failure the connection is destroyed
   * rather than rolled back and reused: a statement may still be in flight on it (or its reply lost),
   * and closing it is the one way to be sure nothing of the transaction commits later.
   */
  async transaction<T>(work: (tx: Connection) => Promise<T>): Promise<T> {
    const connection = await this.connect();
    try {
      await connection.query('BEGIN');
      const result = await work(connection);
      await connection.query('COMMIT');
      connection.release();
      return result;
    } catch (error) {
      connection.destroy();
      throw error;
    }
  }

  /** Ends the pool (at shutdown), waiting for checked-out connections to come back. */
  async end(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * A connection checked out of the pool. A statement past the bound destroys the connection and fails
 * with StatementTimeoutError; a connection that failed without the server's answer is destroyed on
 * release, never lent out again.
 */
export class Connection implements Executor {
  private broken = false;
  private released = false;

  constructor(
    private readonly client: PoolClient,
    private readonly statementTimeoutMs: number,
    /** The server process behind this connection. */
    readonly processId: number,
  ) {}

  get isReleased(): boolean {
    return this.released;
  }

  async query<T extends QueryResultRow = QueryResultRow>(
    text: string,
    params: unknown[] = [],
    name?: string,
  ): Promise<QueryResult<T>> {
    if (this.released) {
      throw new Error('the connection was released');
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.destroy();
    }, this.statementTimeoutMs);
    try {
      return await this.client.query<T>({ text, values: params, name });
    } catch (error) {
      if (timedOut) {
        throw new StatementTimeoutError(this.statementTimeoutMs);
      }
      if (isDatabaseUnavailable(error)) {
        this.broken = true;
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Back to the pool, or destroyed if a statement left it in an unknown state. */
  release(): void {
    if (this.broken) {
      this.destroy();
    } else if (!this.released) {
      this.released = true;
      this.client.release();
    }
  }

  /** Closes the connection; the server rolls back whatever transaction it had open. */
  destroy(): void {
    if (!this.released) {
      this.released = true;
      this.client.release(new Error('connection discarded'));
    }
  }
}
