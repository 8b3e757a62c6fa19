import { CreateWebhookTables1767225600000 } from '../../migrations/1767225600000-create-webhook-tables';
import { CreateBillingTables1767312000000 } from '../../migrations/1767312000000-create-billing-tables';
import { CreateWalletAndUsageTables1767398400000 } from '../../migrations/1767398400000-create-wallet-and-usage-tables';
import { SubscriptionUserLinks1767484800000 } from '../../migrations/1767484800000-subscription-user-links';
import { CreateWalletIntentPaymentMethods1767571200000 } from '../../migrations/1767571200000-create-wallet-intent-payment-methods';
import { QueueClaims1767657600000 } from '../../migrations/1767657600000-queue-claims';
import { PullFromStripe1767744000000 } from '../../migrations/1767744000000-pull-from-stripe';
import { AdminConsoleIndexes1767830400000 } from '../../migrations/1767830400000-admin-console-indexes';
import { ConnectAccounts1767920400000 } from '../../migrations/1767920400000-connect-accounts';
import { StripeApiBudget1768003200000 } from '../../migrations/1768003200000-stripe-api-budget';

/**
 * Every migration, oldest first. Listed rather than globbed so that the same list works compiled,
 * under Jest and in the migration CLI.
 */
export const MIGRATIONS = [
  CreateWebhookTables1767225600000,
  CreateBillingTables1767312000000,
  CreateWalletAndUsageTables1767398400000,
  SubscriptionUserLinks1767484800000,
  CreateWalletIntentPaymentMethods1767571200000,
  QueueClaims1767657600000,
  PullFromStripe1767744000000,
  AdminConsoleIndexes1767830400000,
  ConnectAccounts1767920400000,
  StripeApiBudget1768003200000,
];
