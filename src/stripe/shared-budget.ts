import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { Database } from '../database/database';
import { leaseMs } from '../queue/retry-policy';

/**
 * STRIPE_API_MAX_RPS for the whole service: before each request, a replica takes one of the
 * requests of the current second of the database clock (every replica counts in the same row of
 * `stripe_api_budget`); when the second's are used up it waits for the next second. One statement,
 * no transaction: the row lock orders concurrent takers and each sees the count the last one left.
 *
 * It has a connection of its own: a handler that calls Stripe inside its attempt holds a pooled
 * connection meanwhile, and takers must never wait for those.
 */
@Injectable()
export class SharedStripeBudget implements OnApplicationShutdown {
  private readonly perSecond: number;
  private readonly db: Database | undefined;

  constructor(config: AppConfig) {
    this.perSecond = config.stripeApi?.maxRequestsPerSecond ?? 0;
    this.db =
      config.stripeApi && config.databaseUrl
        ? new Database({
            url: config.databaseUrl,
            poolSize: 1,
            statementTimeoutMs: leaseMs(config.handlerTimeoutMs),
            applicationName: 'stripe-webhook-processor (Stripe API budget)',
          })
        : undefined;
  }

  /** Resolves once a request of the current second is this caller's. */
  async take(): Promise<void> {
    if (!this.db) {
      return;
    }
    for (;;) {
      const {
        rows: [row],
      } = await this.db.query<{ granted: boolean; fraction: number }>(
        `WITH clock AS (SELECT extract(epoch FROM clock_timestamp()) AS t),
              now AS (SELECT floor(t)::bigint AS second, t - floor(t) AS fraction FROM clock),
              taken AS (
                UPDATE stripe_api_budget b
                   SET used = CASE WHEN b.second = now.second THEN b.used + 1 ELSE 1 END, second = now.second
                  FROM now
                 WHERE b.slot = now.second % 60 AND (b.second <> now.second OR b.used < $1)
                RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM taken) AS granted, (SELECT fraction FROM now)::float8 AS fraction`,
        [this.perSecond],
        'swp_take_stripe_budget',
      );
      if (row.granted) {
        return;
      }
      // The rest of this second, and a little more so as not to ask just before it turns.
      await new Promise((resolve) => setTimeout(resolve, Math.ceil((1 - row.fraction) * 1000) + 5));
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.db?.end();
  }
}
