import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';
import { AppConfig } from '../config/app-config';
import { sql } from '../database/sql';

export interface UsagePeriod {
  start: Date;
  end: Date;
}

@Injectable()
export class UsageRepository {
  constructor(
    private readonly db: Database,
    private readonly config: AppConfig,
  ) {}

  /**
   * The latest-starting period of the customer's access-granting subscriptions, read from them and
   * from their paid renewal invoices, so that either may arrive first; null when none grants access.
   */
  async currentPeriod(customerId: string): Promise<UsagePeriod | null> {
    const { rows } = await sql<{ period_start: Date; period_end: Date }>(
      this.db,
      `WITH granting AS (
         SELECT stripe_subscription_id, current_period_start, current_period_end
           FROM subscriptions
          WHERE stripe_customer_id = $1 AND status = ANY($2::text[]) AND NOT deleted
            AND NOT EXISTS (SELECT 1 FROM customers WHERE stripe_customer_id = $1 AND deleted)
       )
       SELECT period_start, period_end FROM (
         SELECT current_period_start AS period_start, current_period_end AS period_end
           FROM granting
          WHERE current_period_start IS NOT NULL AND current_period_end IS NOT NULL
         UNION ALL
         SELECT i.period_start, i.period_end
           FROM invoices i JOIN granting g ON g.stripe_subscription_id = i.stripe_subscription_id
          WHERE i.stripe_customer_id = $1 AND i.status = 'paid' AND i.billing_reason = 'subscription_cycle'
            AND i.period_start IS NOT NULL AND i.period_end IS NOT NULL
       ) periods
       WHERE period_start <= now()
       ORDER BY period_start DESC, period_end DESC
       LIMIT 1`,
      [customerId, [...this.config.accessStatuses]],
    );
    return rows[0] ? { start: rows[0].period_start, end: rows[0].period_end } : null;
  }

  /**
   * Counts `quantity` once per idempotency key, in one statement: only a new key adds to the
   * period's counter. Returns the quantity the key was first recorded with.
   */
  async record(customerId: string, key: string, quantity: number, period: UsagePeriod): Promise<number> {
    const { rows } = await sql<{ quantity: string }>(
      this.db,
      `WITH recorded AS (
         INSERT INTO usage_records (stripe_customer_id, idempotency_key, period_start, quantity)
         VALUES ($1, $2, $3, $5)
         ON CONFLICT (stripe_customer_id, idempotency_key) DO NOTHING
         RETURNING quantity
       ), counted AS (
         INSERT INTO usage_periods (stripe_customer_id, period_start, period_end, used)
         SELECT $1, $3, $4, quantity FROM recorded
         ON CONFLICT (stripe_customer_id, period_start)
           DO UPDATE SET used = usage_periods.used + EXCLUDED.used, updated_at = now()
       )
       SELECT quantity FROM recorded
       UNION ALL
       SELECT quantity FROM usage_records
        WHERE stripe_customer_id = $1 AND idempotency_key = $2 AND NOT EXISTS (SELECT 1 FROM recorded)`,
      [customerId, key, period.start, period.end, quantity],
    );
    if (rows.length > 0) {
      return Number(rows[0].quantity);
    }
    // The same key was being recorded concurrently and committed after this statement's snapshot.
    const { rows: again } = await sql<{ quantity: string }>(
      this.db,
      'SELECT quantity FROM usage_records WHERE stripe_customer_id = $1 AND idempotency_key = $2',
      [customerId, key],
    );
    return Number(again[0].quantity);
  }

  async used(customerId: string, period: UsagePeriod): Promise<number> {
    const { rows } = await sql<{ used: string }>(
      this.db,
      'SELECT used FROM usage_periods WHERE stripe_customer_id = $1 AND period_start = $2',
      [customerId, period.start],
    );
    return rows[0] ? Number(rows[0].used) : 0;
  }
}
