import type { Pool, QueryConfig, QueryResultRow } from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

/**
 * One statement on a pooled connection, abandoned after `timeoutMs` (pg's per-query
 * `query_timeout`). For health probes and background figures, never for handler attempts (those
 * are bounded by HANDLER_TIMEOUT_MS and their own statement_timeout).
 *
 * Racing a plain query against a timer is not enough: when the database goes silent (a network
 * black hole, a frozen host) the statement never returns, so its connection stays checked out and
 * hung, and a few probes use up the pool. Here a failed statement's connection is handed back with
 * the error, so that the pool destroys it instead of lending it out again. Waiting for a connection
 * is bounded by the pool's connectionTimeoutMillis (connectTimeoutMS).
 */
export async function boundedQuery<T extends QueryResultRow>(
  dataSource: DataSource,
  text: string,
  params: unknown[],
  timeoutMs: number,
): Promise<T[]> {
  const pool = (dataSource.driver as PostgresDriver).master as Pool;
  const client = await pool.connect();
  const config: QueryConfig & { query_timeout: number } = { text, values: params, query_timeout: timeoutMs };
  try {
    const result = await client.query<T>(config);
    client.release();
    return result.rows;
  } catch (error) {
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}
