import { CursorField, decodeCursor, encodeCursor } from './cursor';

export interface PageRequest {
  limit: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Null on the last page. */
  next_cursor: string | null;
}

/**
 * One page of a keyset-paged list: reads one row more than asked, which only tells whether another
 * page follows; the cursor holds the last item's keys (checked by `fields` when it comes back).
 */
export async function readPage<Row, K extends string>(
  query: PageRequest,
  fields: Record<K, CursorField>,
  read: (limit: number, after: Record<K, string> | undefined) => Promise<Row[]>,
  cursorOf: (last: Row) => Record<K, string>,
): Promise<Page<Row>> {
  const after = query.cursor ? decodeCursor(query.cursor, fields) : undefined;
  const rows = await read(query.limit + 1, after);
  const items = rows.slice(0, query.limit);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > query.limit && last ? encodeCursor(cursorOf(last)) : null };
}
