import type { Pool } from 'pg';
import { eventState } from './queue';
import { ADMIN_TOKEN, TestApp } from './test-app';
import { waitUntil } from './wait';

/** Delivers a signed event and waits until its handler has run (or it ended ignored or dead). */
export async function deliverAndSettle(t: TestApp, pool: Pool, event: { id: string }): Promise<string> {
  const res = await t.deliver(event);
  if (res.status !== 200) {
    throw new Error(`delivery of ${event.id} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  try {
    const state = await waitUntil(
      async () => {
        const s = await eventState(pool, event.id);
        return s && s.status !== 'pending' ? s : undefined;
      },
      10_000,
      `event ${event.id} handled`,
    );
    return state.status;
  } catch (error) {
    const { rows } = await pool.query('SELECT * FROM webhook_retry_queue WHERE stripe_event_id = $1', [event.id]);
    throw new Error(`${(error as Error).message}; queue row: ${JSON.stringify(rows)}`, { cause: error });
  }
}

export async function entitlementsOf(
  t: TestApp,
  path: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await t.http.get(path).set('Authorization', `Bearer ${ADMIN_TOKEN}`);
  return { status: res.status, body: res.body as Record<string, unknown> };
}
