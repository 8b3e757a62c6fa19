import { DataSource, EntityManager, QueryRunner } from 'typeorm';

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
  executor: DataSource | QueryRunner | EntityManager,
  text: string,
  params: unknown[] = [],
  prepared?: string,
): Promise<SqlResult<T>> {
  // A transaction's EntityManager carries its query runner; a DataSource lends one from the pool.
  const own =
    executor instanceof EntityManager ? executor.queryRunner : executor instanceof DataSource ? undefined : executor;
  const dataSource =
    executor instanceof EntityManager ? executor.connection : executor instanceof DataSource ? executor : undefined;
  const runner = own ?? (dataSource as DataSource).createQueryRunner();
  try {
    if (prepared) {
      if (runner.isReleased) {
        throw new Error('the query runner was released');
      }
      const client = (await runner.connect()) as PgClient;
      const result = await client.query({ name: prepared, text, values: params });
      return { rows: result.rows as T[], affected: result.rowCount ?? 0 };
    }
    const result = await runner.query(text, params, true);
    return { rows: (result.records ?? []) as T[], affected: result.affected ?? 0 };
  } finally {
    if (!own) {
      await runner.release();
    }
  }
}

interface PgClient {
  query(config: {
    name: string;
    text: string;
    values: unknown[];
  }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}
