import { BillingRepository } from '../../src/billing/billing.repository';
import { Database } from '../../src/database/database';
import { useTestApp } from '../support/test-app';
import { TestTransaction } from '../support/transaction';

describe('linking a customer to a user while another transaction creates it', () => {
  const { db, t } = useTestApp();

  it('keeps the link when the customer row is committed by a concurrent insert after this statement began', async () => {
    const billing = t.app.get(BillingRepository);
    const database = t.app.get(Database);
    const first = await TestTransaction.open(database);
    const second = await TestTransaction.open(database);
    try {
      await first.startTransaction();
      await billing.ensureCustomer(first.manager, 'cus_raced', null); // inserted, not committed yet
      await second.startTransaction();
      const linking = billing.ensureCustomer(second.manager, 'cus_raced', 'user_raced', 'raced@example.com');
      await new Promise((resolve) => setTimeout(resolve, 200)); // it now waits on the first insert
      await first.commitTransaction();
      await linking;
      await second.commitTransaction();
    } finally {
      first.release();
      second.release();
    }
    const { rows } = await db.pool.query('SELECT user_id, email FROM customers WHERE stripe_customer_id = $1', [
      'cus_raced',
    ]);
    expect(rows).toEqual([{ user_id: 'user_raced', email: 'raced@example.com' }]);
  });
});
