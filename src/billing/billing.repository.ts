import { Injectable } from '@nestjs/common';
import { Database, Executor } from '../database/database';
import { sql } from '../database/sql';
import type { CustomerRow, EntitlementSummaryRow, SubscriptionRow } from './entitlements';
import type {
  CustomerState,
  EntitlementSummaryState,
  EventOrder,
  InvoiceState,
  SubscriptionState,
} from './stripe-objects';

interface CustomerFlags {
  customer_inserted: boolean;
  customer_visible: boolean;
}

/**
 * The customers of a user ($1), directly or through a subscription: a UNION of two index lookups,
 * because written with OR, PostgreSQL scans every customer on each request.
 */
export const CUSTOMERS_OF_USER = `SELECT stripe_customer_id, user_id, deleted, updated_at
         FROM customers
        WHERE user_id = $1
       UNION
       SELECT c.stripe_customer_id, c.user_id, c.deleted, c.updated_at
         FROM subscriptions s
         JOIN customers c ON c.stripe_customer_id = s.stripe_customer_id
        WHERE s.user_id = $1`;

/** What upsertInvoice did. */
export interface InvoiceUpsert {
  /** The event was newer than the stored state (or the same event again), and set it. */
  applied: boolean;
  /** The event was already the last one applied (an operator reprocessing it). */
  reapplied: boolean;
  /** The invoice is known to be paid (now or by an earlier event). */
  paid: boolean;
}

interface LinkFlags {
  link_inserted: boolean;
  link_visible: boolean;
}

/** $1 to $8 of the customer upsert and deletion. */
function customerParams(customer: CustomerState, order: EventOrder): unknown[] {
  return [
    customer.id,
    customer.userId,
    customer.email,
    customer.name,
    customer.metadata,
    order.created,
    order.rank,
    order.eventId,
  ];
}

/** A subscription row as the admin API shows it. */
export interface CustomerSubscriptionRow {
  stripe_subscription_id: string;
  status: string;
  deleted: boolean;
  price_ids: string[];
  product_ids: string[];
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  canceled_at: Date | null;
  updated_at: Date;
}

/**
 * Billing SQL; writes take the attempt's connection, so they commit with the event. An upsert
 * applies an event only if it is newer than the row's last one, by (created, rank, event id).
 */
@Injectable()
export class BillingRepository {
  constructor(private readonly db: Database) {}

  /**
   * A customer known only from another object, given the user id or email it carries if it has
   * none; the row is locked only when something changes, so a customer's events do not serialise.
   */
  async ensureCustomer(
    manager: Executor,
    customerId: string,
    userId: string | null,
    email?: string | null,
  ): Promise<void> {
    const { rows } = await sql<CustomerFlags>(
      manager,
      `WITH customer_inserted AS (
         INSERT INTO customers (stripe_customer_id, user_id, email) VALUES ($1, $2, $3)
         ON CONFLICT (stripe_customer_id) DO NOTHING
         RETURNING 1
       ), customer_completed AS (
         UPDATE customers
            SET user_id = coalesce(user_id, $2), email = coalesce(email, $3), updated_at = now()
          WHERE stripe_customer_id = $1
            AND ((user_id IS NULL AND $2::text IS NOT NULL) OR (email IS NULL AND $3::text IS NOT NULL))
            AND NOT EXISTS (SELECT 1 FROM customer_inserted)
       )
       SELECT EXISTS (SELECT 1 FROM customer_inserted) AS customer_inserted,
              EXISTS (SELECT 1 FROM customers WHERE stripe_customer_id = $1) AS customer_visible`,
      [customerId, userId, email ?? null],
    );
    await this.completeIfUnseen(manager, rows[0], customerId, userId, email ?? null);
  }

  /**
   * A statement that waited for a concurrent insert of the customer cannot see the committed row
   * (its snapshot is older): a fresh statement adds the user id and email it could not.
   */
  private async completeIfUnseen(
    manager: Executor,
    flags: CustomerFlags,
    customerId: string,
    userId: string | null,
    email: string | null,
  ): Promise<void> {
    if (flags.customer_inserted || flags.customer_visible || (userId === null && email === null)) {
      return;
    }
    await sql(
      manager,
      `UPDATE customers
          SET user_id = coalesce(user_id, $2), email = coalesce(email, $3), updated_at = now()
        WHERE stripe_customer_id = $1
          AND ((user_id IS NULL AND $2::text IS NOT NULL) OR (email IS NULL AND $3::text IS NOT NULL))`,
      [customerId, userId, email],
    );
  }

  /** customer.created / customer.updated: newer wins; a deleted customer stays deleted. */
  async upsertCustomer(manager: Executor, customer: CustomerState, order: EventOrder): Promise<boolean> {
    const { affected } = await sql(
      manager,
      `INSERT INTO customers (stripe_customer_id, user_id, email, name, metadata,
                              last_event_created, last_event_rank, last_event_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (stripe_customer_id) DO UPDATE
          SET user_id = coalesce(EXCLUDED.user_id, customers.user_id),
              email = EXCLUDED.email, name = EXCLUDED.name, metadata = EXCLUDED.metadata,
              last_event_created = EXCLUDED.last_event_created,
              last_event_rank = EXCLUDED.last_event_rank,
              last_event_id = EXCLUDED.last_event_id,
              updated_at = now()
        WHERE NOT customers.deleted
          AND (customers.last_event_created IS NULL
               OR customers.last_event_id = EXCLUDED.last_event_id
               OR (EXCLUDED.last_event_created, EXCLUDED.last_event_rank, EXCLUDED.last_event_id)
                > (customers.last_event_created, customers.last_event_rank, customers.last_event_id))`,
      customerParams(customer, order),
    );
    return affected > 0;
  }

  /** customer.deleted: final, whatever arrives before or after. */
  async deleteCustomer(manager: Executor, customer: CustomerState, order: EventOrder): Promise<void> {
    await sql(
      manager,
      `INSERT INTO customers (stripe_customer_id, user_id, email, name, metadata, deleted,
                              last_event_created, last_event_rank, last_event_id)
       VALUES ($1, $2, $3, $4, $5, true, $6, $7, $8)
       ON CONFLICT (stripe_customer_id) DO UPDATE
          SET deleted = true,
              user_id = coalesce(customers.user_id, EXCLUDED.user_id),
              last_event_created = greatest(customers.last_event_created, EXCLUDED.last_event_created),
              updated_at = now()
        WHERE NOT customers.deleted`,
      customerParams(customer, order),
    );
  }

  /**
   * Links a checkout's user to the customer and its subscription (an existing link is kept); the
   * link row waits for a subscription that arrives later (see upsertSubscription's link_probe).
   */
  async linkUser(manager: Executor, customerId: string, subscriptionId: string | null, userId: string): Promise<void> {
    if (subscriptionId) {
      // The subscription row (when it exists) before anything else, as the subscription upsert takes
      // it first: with the opposite order, a checkout and an update of a known subscription handled
      // at the same moment would deadlock on it and the link row.
      await sql(manager, 'SELECT 1 FROM subscriptions WHERE stripe_subscription_id = $1 FOR UPDATE', [subscriptionId]);
    }
    await this.ensureCustomer(manager, customerId, userId);
    if (subscriptionId) {
      const { rows } = await sql<{ user_id: string }>(
        manager,
        `INSERT INTO subscription_user_links (stripe_subscription_id, user_id) VALUES ($1, $2)
         ON CONFLICT (stripe_subscription_id) DO UPDATE
            SET user_id = coalesce(subscription_user_links.user_id, EXCLUDED.user_id), updated_at = now()
         RETURNING user_id`,
        [subscriptionId, userId],
      );
      await sql(
        manager,
        `UPDATE subscriptions SET user_id = $2, updated_at = now()
          WHERE stripe_subscription_id = $1 AND user_id IS NULL`,
        [subscriptionId, rows[0].user_id],
      );
    }
  }

  /**
   * Every customer.subscription.* event, in one statement: the customer is ensured, the subscription
   * is marked seen for a concurrent checkout's link (link_probe), and it is set if the event wins.
   */
  async upsertSubscription(manager: Executor, s: SubscriptionState, order: EventOrder): Promise<boolean> {
    const { rows } = await sql<CustomerFlags & LinkFlags & { applied: boolean }>(
      manager,
      `WITH customer_inserted AS (
         INSERT INTO customers (stripe_customer_id, user_id) VALUES ($2, $4)
         ON CONFLICT (stripe_customer_id) DO NOTHING
         RETURNING 1
       ), customer_completed AS (
         UPDATE customers
            SET user_id = $4, updated_at = now()
          WHERE stripe_customer_id = $2 AND user_id IS NULL AND $4::text IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM customer_inserted)
       ), link_probe AS (
         INSERT INTO subscription_user_links (stripe_subscription_id) SELECT $1 WHERE $4::text IS NULL
         ON CONFLICT (stripe_subscription_id) DO NOTHING
         RETURNING 1
       ), applied AS (
         INSERT INTO subscriptions (
           stripe_subscription_id, stripe_customer_id, status, user_id, price_ids, product_ids, lookup_keys,
           price_features, items, current_period_start, current_period_end, cancel_at_period_end, cancel_at,
           canceled_at, ended_at, trial_start, trial_end, metadata, deleted,
           last_event_created, last_event_rank, last_event_id)
         VALUES ($1, $2, $3,
                 coalesce($4::text, (SELECT user_id FROM subscription_user_links WHERE stripe_subscription_id = $1)),
                 $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
         ON CONFLICT (stripe_subscription_id) DO UPDATE
            SET stripe_customer_id = EXCLUDED.stripe_customer_id,
                status = EXCLUDED.status,
                user_id = coalesce($4::text, subscriptions.user_id, EXCLUDED.user_id),
                price_ids = EXCLUDED.price_ids,
                product_ids = EXCLUDED.product_ids,
                lookup_keys = EXCLUDED.lookup_keys,
                price_features = EXCLUDED.price_features,
                items = EXCLUDED.items,
                current_period_start = EXCLUDED.current_period_start,
                current_period_end = EXCLUDED.current_period_end,
                cancel_at_period_end = EXCLUDED.cancel_at_period_end,
                cancel_at = EXCLUDED.cancel_at,
                canceled_at = EXCLUDED.canceled_at,
                ended_at = EXCLUDED.ended_at,
                trial_start = EXCLUDED.trial_start,
                trial_end = EXCLUDED.trial_end,
                metadata = EXCLUDED.metadata,
                deleted = EXCLUDED.deleted,
                last_event_created = EXCLUDED.last_event_created,
                last_event_rank = EXCLUDED.last_event_rank,
                last_event_id = EXCLUDED.last_event_id,
                updated_at = now()
          WHERE (NOT subscriptions.deleted AND EXCLUDED.deleted)
             OR ((NOT subscriptions.deleted OR EXCLUDED.deleted)
                 AND (subscriptions.last_event_id = EXCLUDED.last_event_id
                      OR (EXCLUDED.last_event_created, EXCLUDED.last_event_rank, EXCLUDED.last_event_id)
                       > (subscriptions.last_event_created, subscriptions.last_event_rank, subscriptions.last_event_id)))
         RETURNING 1
       )
       SELECT EXISTS (SELECT 1 FROM applied) AS applied,
              EXISTS (SELECT 1 FROM customer_inserted) AS customer_inserted,
              EXISTS (SELECT 1 FROM customers WHERE stripe_customer_id = $2) AS customer_visible,
              EXISTS (SELECT 1 FROM link_probe) AS link_inserted,
              EXISTS (SELECT 1 FROM subscription_user_links WHERE stripe_subscription_id = $1) AS link_visible`,
      [
        s.id,
        s.customerId,
        s.status,
        s.userId,
        s.priceIds,
        s.productIds,
        s.lookupKeys,
        s.priceFeatures,
        JSON.stringify(s.items),
        s.currentPeriodStart,
        s.currentPeriodEnd,
        s.cancelAtPeriodEnd,
        s.cancelAt,
        s.canceledAt,
        s.endedAt,
        s.trialStart,
        s.trialEnd,
        s.metadata,
        s.deleted,
        order.created,
        order.rank,
        order.eventId,
      ],
      'swp_upsert_subscription',
    );
    await this.completeIfUnseen(manager, rows[0], s.customerId, s.userId, null);
    if (s.userId === null && !rows[0].link_inserted && !rows[0].link_visible) {
      // A Checkout Session linked a user concurrently: its link committed after this statement began.
      await sql(
        manager,
        `UPDATE subscriptions s SET user_id = l.user_id, updated_at = now()
           FROM subscription_user_links l
          WHERE s.stripe_subscription_id = $1 AND l.stripe_subscription_id = $1
            AND s.user_id IS NULL AND l.user_id IS NOT NULL`,
        [s.id],
      );
    }
    return rows[0].applied;
  }

  /** entitlements.active_entitlement_summary.updated: replaces the customer's list if newer. */
  async upsertEntitlementSummary(
    manager: Executor,
    summary: EntitlementSummaryState,
    order: EventOrder,
  ): Promise<boolean> {
    const { affected } = await sql(
      manager,
      `INSERT INTO customer_entitlements (stripe_customer_id, lookup_keys, entitlements, has_more,
                                          last_event_created, last_event_id)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (stripe_customer_id) DO UPDATE
          SET lookup_keys = EXCLUDED.lookup_keys, entitlements = EXCLUDED.entitlements, has_more = EXCLUDED.has_more,
              last_event_created = EXCLUDED.last_event_created, last_event_id = EXCLUDED.last_event_id,
              updated_at = now()
        WHERE customer_entitlements.last_event_id = EXCLUDED.last_event_id
           OR (EXCLUDED.last_event_created, EXCLUDED.last_event_id)
            > (customer_entitlements.last_event_created, customer_entitlements.last_event_id)`,
      [
        summary.customerId,
        summary.lookupKeys,
        JSON.stringify(summary.entitlements),
        summary.hasMore,
        order.created,
        order.eventId,
      ],
    );
    return affected > 0;
  }

  /**
   * invoice.*: the invoice as of its newest event (when it was paid, or last failed, is kept). The
   * result says whether it was applied, reapplied by an operator, and whether the invoice is paid.
   */
  async upsertInvoice(
    manager: Executor,
    invoice: InvoiceState,
    order: EventOrder,
    paymentFailed: boolean,
  ): Promise<InvoiceUpsert> {
    // `prior` reads the row as of the statement's start: another delivery of this same event is
    // never handled concurrently (the queue's lease), so it tells a reprocess from a first application.
    const { rows } = await sql<InvoiceUpsert>(
      manager,
      `WITH prior AS (
         SELECT last_event_id FROM invoices WHERE stripe_invoice_id = $1
       ), upserted AS (
       INSERT INTO invoices (stripe_invoice_id, stripe_customer_id, stripe_subscription_id, status, billing_reason,
                             currency, amount_due, amount_paid, period_start, period_end, attempt_count,
                             next_payment_attempt, paid_at, payment_failed_at,
                             last_event_created, last_event_rank, last_event_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
               CASE WHEN $14::boolean THEN $15::timestamptz END, $15, $16, $17)
       ON CONFLICT (stripe_invoice_id) DO UPDATE
          SET stripe_subscription_id = coalesce(EXCLUDED.stripe_subscription_id, invoices.stripe_subscription_id),
              status = EXCLUDED.status,
              billing_reason = EXCLUDED.billing_reason,
              currency = EXCLUDED.currency,
              amount_due = EXCLUDED.amount_due,
              amount_paid = EXCLUDED.amount_paid,
              period_start = EXCLUDED.period_start,
              period_end = EXCLUDED.period_end,
              attempt_count = EXCLUDED.attempt_count,
              next_payment_attempt = EXCLUDED.next_payment_attempt,
              paid_at = coalesce(EXCLUDED.paid_at, invoices.paid_at),
              payment_failed_at = coalesce(EXCLUDED.payment_failed_at, invoices.payment_failed_at),
              last_event_created = EXCLUDED.last_event_created,
              last_event_rank = EXCLUDED.last_event_rank,
              last_event_id = EXCLUDED.last_event_id,
              updated_at = now()
        WHERE invoices.last_event_id = EXCLUDED.last_event_id
           OR (EXCLUDED.last_event_created, EXCLUDED.last_event_rank, EXCLUDED.last_event_id)
            > (invoices.last_event_created, invoices.last_event_rank, invoices.last_event_id)
       RETURNING paid_at IS NOT NULL AS paid
       )
       SELECT EXISTS (SELECT 1 FROM upserted) AS applied,
              EXISTS (SELECT 1 FROM prior WHERE last_event_id = $17) AS reapplied,
              coalesce((SELECT paid FROM upserted), false) AS paid`,
      [
        invoice.id,
        invoice.customerId,
        invoice.subscriptionId,
        invoice.status,
        invoice.billingReason,
        invoice.currency,
        invoice.amountDue,
        invoice.amountPaid,
        invoice.periodStart,
        invoice.periodEnd,
        invoice.attemptCount,
        invoice.nextPaymentAttempt,
        invoice.paidAt,
        paymentFailed,
        order.created,
        order.rank,
        order.eventId,
      ],
    );
    return rows[0];
  }

  // --- reads for the entitlements API ----------------------------------------------------------

  /** Every subscription of a customer, as stored, most recently changed first (at most `limit`). */
  async subscriptionsOfCustomer(customerId: string, limit: number): Promise<CustomerSubscriptionRow[]> {
    const { rows } = await sql<CustomerSubscriptionRow>(
      this.db,
      `SELECT stripe_subscription_id, status, deleted, price_ids, product_ids, current_period_end,
              cancel_at_period_end, canceled_at, updated_at
         FROM subscriptions
        WHERE stripe_customer_id = $1
        ORDER BY last_event_created DESC, updated_at DESC, stripe_subscription_id
        LIMIT $2`,
      [customerId, limit],
    );
    return rows;
  }

  async customerExists(customerId: string): Promise<boolean> {
    const { rows } = await sql(this.db, 'SELECT 1 FROM customers WHERE stripe_customer_id = $1', [customerId]);
    return rows.length > 0;
  }

  async customersById(customerId: string): Promise<CustomerRow[]> {
    const { rows } = await sql<CustomerRow>(
      this.db,
      `SELECT stripe_customer_id, user_id, deleted, updated_at FROM customers WHERE stripe_customer_id = $1`,
      [customerId],
    );
    return rows;
  }

  /** Customers linked to a user directly, or through a subscription's metadata.user_id. */
  async customersOfUser(userId: string): Promise<CustomerRow[]> {
    const { rows } = await sql<CustomerRow>(this.db, CUSTOMERS_OF_USER, [userId]);
    return rows;
  }

  async subscriptionsOf(customerIds: string[]): Promise<SubscriptionRow[]> {
    const { rows } = await sql<SubscriptionRow>(
      this.db,
      `SELECT stripe_subscription_id, stripe_customer_id, status, user_id, price_ids, product_ids, lookup_keys,
              price_features, current_period_end, cancel_at_period_end, last_event_created, updated_at
         FROM subscriptions
        WHERE stripe_customer_id = ANY($1)`,
      [customerIds],
    );
    return rows;
  }

  async summariesOf(customerIds: string[]): Promise<EntitlementSummaryRow[]> {
    const { rows } = await sql<EntitlementSummaryRow>(
      this.db,
      `SELECT stripe_customer_id, lookup_keys, updated_at FROM customer_entitlements WHERE stripe_customer_id = ANY($1)`,
      [customerIds],
    );
    return rows;
  }
}
