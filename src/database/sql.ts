import type { Executor } from './database';

export interface SqlResult<T> {
  rows: T[];
  /** Rows inserted, updated or deleted (for INSERT, UPDATE and DELETE). */
  affected: number;
}

/**
 * Runs one statement on the pool or on a transaction's connection. `name` makes it a named
 * prepared statement (parsed once per connection): for the statements on the hot path.
 */
export async function sql<T = Record<string, unknown>>(
  executor: Executor,
  text: string,
  params: unknown[] = [],
  name?: string,
): Promise<SqlResult<T>> {
  const result = await executor.query(text, params, name);
  return { rows: result.rows as T[], affected: result.rowCount ?? 0 };
}
