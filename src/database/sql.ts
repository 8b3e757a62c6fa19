import { DataSource, QueryRunner } from 'typeorm';

export interface SqlResult<T> {
  rows: T[];
  /** Rows inserted, updated or deleted (for UPDATE and DELETE). */
  affected: number;
}

/**
 * Runs one statement and returns its rows. TypeORM's plain `query()` answers an UPDATE or DELETE
 * with `[rows, rowCount]` but anything else with `rows`, which makes `RETURNING` results easy to
 * misread; asking for the structured result removes the ambiguity.
 */
export async function sql<T = Record<string, unknown>>(
  executor: DataSource | QueryRunner,
  text: string,
  params: unknown[] = [],
): Promise<SqlResult<T>> {
  const runner = executor instanceof DataSource ? executor.createQueryRunner() : executor;
  try {
    const result = await runner.query(text, params, true);
    return { rows: (result.records ?? []) as T[], affected: result.affected ?? 0 };
  } finally {
    if (executor instanceof DataSource) {
      await runner.release();
    }
  }
}
