import { Injectable } from '@nestjs/common';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';
import type { FailedTopUp } from './stripe-objects';

export interface WalletCredit {
  customerId: string;
  paymentIntentId: string;
  amount: number;
  currency: string;
  sourceEventId: string;
  sourceEventType: string;
}

export interface WalletEntry {
  id: string;
  amount: number;
  currency: string;
  payment_intent: string;
  source_event_id: string;
  created_at: Date;
}

export interface Wallet {
  balances: Record<string, number>;
  autoRechargePaymentMethod: string | null;
  entries: WalletEntry[];
}

/** A succeeded PaymentIntent's payment method, kept until the session that makes it a top-up arrives. */
export interface IntentPaymentMethod {
  paymentIntentId: string;
  customerId: string | null;
  paymentMethodId: string;
  eventCreated: Date;
}

/** First key of the transaction-level advisory locks on one PaymentIntent (the second is its hash). */
const PAYMENT_INTENT_LOCK_CLASS = 4_242_101;
/** A remembered payment method that no session claims is dropped after this long. */
export const INTENT_PAYMENT_METHOD_RETENTION_DAYS = 30;
/** Expired rows removed per remembered one: more than one, so the table cannot grow past the window. */
const INTENT_PAYMENT_METHOD_PRUNE_BATCH = 10;

@Injectable()
export class WalletRepository {
  constructor(private readonly db: Database) {}

  /**
   * Serialises the top-up session and a purpose-less payment_intent.succeeded of one PaymentIntent
   * until the transaction ends, so each sees what the other committed. Taken before any row lock.
   */
  async lockPaymentIntent(manager: Executor, paymentIntentId: string): Promise<void> {
    await sql(manager, 'SELECT pg_advisory_xact_lock($1, hashtext($2))', [PAYMENT_INTENT_LOCK_CLASS, paymentIntentId]);
  }

  /** The customer whose wallet this PaymentIntent credited, or null if it credited none (yet). */
  async creditedCustomer(manager: Executor, paymentIntentId: string): Promise<string | null> {
    const { rows } = await sql<{ stripe_customer_id: string }>(
      manager,
      'SELECT stripe_customer_id FROM wallet_ledger WHERE payment_intent_id = $1',
      [paymentIntentId],
    );
    return rows[0]?.stripe_customer_id ?? null;
  }

  /**
   * Keeps the payment method of a succeeded PaymentIntent not known as a top-up (yet), and removes
   * a few rows older than the retention window, skipping any another transaction holds.
   */
  async rememberIntentPaymentMethod(manager: Executor, intent: IntentPaymentMethod): Promise<void> {
    await sql(
      manager,
      `INSERT INTO wallet_intent_payment_methods (payment_intent_id, stripe_customer_id, payment_method_id, event_created)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (payment_intent_id) DO NOTHING`,
      [intent.paymentIntentId, intent.customerId, intent.paymentMethodId, intent.eventCreated],
    );
    await sql(
      manager,
      `DELETE FROM wallet_intent_payment_methods
        WHERE payment_intent_id IN (SELECT payment_intent_id FROM wallet_intent_payment_methods
                                     WHERE created_at < now() - $1 * interval '1 day'
                                     ORDER BY created_at
                                     LIMIT $2
                                     FOR UPDATE SKIP LOCKED)`,
      [INTENT_PAYMENT_METHOD_RETENTION_DAYS, INTENT_PAYMENT_METHOD_PRUNE_BATCH],
    );
  }

  /** Removes and returns the payment method remembered for this PaymentIntent, if any. */
  async takeIntentPaymentMethod(manager: Executor, paymentIntentId: string): Promise<IntentPaymentMethod | null> {
    const { rows } = await sql<{
      stripe_customer_id: string | null;
      payment_method_id: string;
      event_created: Date;
    }>(
      manager,
      `DELETE FROM wallet_intent_payment_methods WHERE payment_intent_id = $1
       RETURNING stripe_customer_id, payment_method_id, event_created`,
      [paymentIntentId],
    );
    const row = rows[0];
    return row
      ? {
          paymentIntentId,
          customerId: row.stripe_customer_id,
          paymentMethodId: row.payment_method_id,
          eventCreated: row.event_created,
        }
      : null;
  }

  /**
   * Credits a top-up once per PaymentIntent, in one statement: only a new ledger row adds to the
   * balance (a concurrent second event waits for the first's insert, then finds it).
   */
  async credit(manager: Executor, credit: WalletCredit): Promise<boolean> {
    const { rows } = await sql(
      manager,
      `WITH entry AS (
         INSERT INTO wallet_ledger (stripe_customer_id, payment_intent_id, amount, currency, source_event_id, source_event_type)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (payment_intent_id) DO NOTHING
         RETURNING stripe_customer_id, currency, amount
       )
       INSERT INTO wallet_balances (stripe_customer_id, currency, balance)
       SELECT stripe_customer_id, currency, amount FROM entry
       ON CONFLICT (stripe_customer_id, currency)
         DO UPDATE SET balance = wallet_balances.balance + EXCLUDED.balance, updated_at = now()
       RETURNING balance`,
      [
        credit.customerId,
        credit.paymentIntentId,
        credit.amount,
        credit.currency,
        credit.sourceEventId,
        credit.sourceEventType,
      ],
    );
    return rows.length > 0;
  }

  /** The payment method of the latest successful top-up (by event time) becomes the auto-recharge method. */
  async setAutoRechargeMethod(
    manager: Executor,
    customerId: string,
    paymentMethodId: string,
    eventCreated: Date,
  ): Promise<void> {
    await sql(
      manager,
      `UPDATE customers
          SET auto_recharge_payment_method = $2, auto_recharge_set_by_event_created = $3, updated_at = now()
        WHERE stripe_customer_id = $1
          AND (auto_recharge_set_by_event_created IS NULL OR auto_recharge_set_by_event_created <= $3)`,
      [customerId, paymentMethodId, eventCreated],
    );
  }

  /** A failed top-up attempt; a PaymentIntent that fails again keeps its latest failure. */
  async recordFailure(manager: Executor, failure: FailedTopUp, eventId: string, eventCreated: Date): Promise<void> {
    await sql(
      manager,
      `INSERT INTO wallet_failed_top_ups (payment_intent_id, stripe_customer_id, amount, currency, failure_code,
                                          decline_code, failure_message, source_event_id, failed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (payment_intent_id) DO UPDATE
          SET failure_code = EXCLUDED.failure_code, decline_code = EXCLUDED.decline_code,
              failure_message = EXCLUDED.failure_message, source_event_id = EXCLUDED.source_event_id,
              failed_at = EXCLUDED.failed_at
        WHERE EXCLUDED.failed_at >= wallet_failed_top_ups.failed_at`,
      [
        failure.paymentIntentId,
        failure.customerId,
        failure.amount,
        failure.currency,
        failure.code,
        failure.declineCode,
        failure.message,
        eventId,
        eventCreated,
      ],
    );
  }

  /** Balances by currency, the auto-recharge method and the newest 50 entries; null for an unknown customer. */
  async walletOf(customerId: string): Promise<Wallet | null> {
    const { rows: customers } = await sql<{ auto_recharge_payment_method: string | null }>(
      this.db,
      'SELECT auto_recharge_payment_method FROM customers WHERE stripe_customer_id = $1',
      [customerId],
    );
    if (customers.length === 0) {
      return null;
    }
    const [{ rows: balances }, { rows: entries }] = await Promise.all([
      sql<{ currency: string; balance: string }>(
        this.db,
        'SELECT currency, balance FROM wallet_balances WHERE stripe_customer_id = $1 ORDER BY currency',
        [customerId],
      ),
      sql<WalletEntry & { amount: string }>(
        this.db,
        `SELECT id, amount, currency, payment_intent_id AS payment_intent, source_event_id, created_at
           FROM wallet_ledger WHERE stripe_customer_id = $1
          ORDER BY created_at DESC, id DESC LIMIT 50`,
        [customerId],
      ),
    ]);
    return {
      balances: Object.fromEntries(balances.map((b) => [b.currency, Number(b.balance)])),
      autoRechargePaymentMethod: customers[0].auto_recharge_payment_method,
      entries: entries.map((e) => ({ ...e, amount: Number(e.amount) })),
    };
  }
}
