import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Stripe from 'stripe';
import { errorMessage } from '../src/common/error-message';
import { readEnvironment } from '../src/config/environment-source';
import { dataDirectory, Environment } from '../src/config/environment-variables';
import { fixtureEvent, fixtureNames, newWorld } from './stripe-fixtures';

const USAGE = `usage: npm run send-event -- <event-type> [options]

Signs a realistic Stripe event (from test/fixtures/events) with the configured webhook secret and
POSTs it, like \`stripe trigger\` does. Each run uses fresh ids unless you give them.

  --variant <name>      which fixture of that type (e.g. wallet_top_up, legacy, subscription, plain)
  --url <url>           default http://127.0.0.1:$PORT/webhooks/stripe
  --customer <cus_…>    use this customer id
  --subscription <sub_…>  use this subscription id
  --user <id>           use this user id (metadata.user_id, client_reference_id)
  --account <acct_…>    as if from a Connect endpoint: the connected account it comes from
  --secret <whsec_…>    default STRIPE_WEBHOOK_SECRET, else the one in $DATA_DIR/dev-secrets.json
  --print               print the event instead of sending it
  --list                list the event types and variants available`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      variant: { type: 'string' },
      url: { type: 'string' },
      customer: { type: 'string' },
      subscription: { type: 'string' },
      user: { type: 'string' },
      account: { type: 'string' },
      secret: { type: 'string' },
      print: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.list) {
    console.log(fixtureNames().join('\n'));
    return;
  }
  const type = positionals[0];
  if (!type || values.help) {
    console.log(USAGE);
    process.exitCode = type || values.help ? 0 : 2;
    return;
  }
  const event = fixtureEvent(fixtureFor(type, values.variant), {
    ...newWorld(),
    ...(values.customer ? { customer: values.customer } : {}),
    ...(values.subscription ? { subscription: values.subscription } : {}),
    ...(values.user ? { user: values.user } : {}),
  });
  event.created = Math.floor(Date.now() / 1000); // the newest state, whatever was sent before
  if (values.account) {
    event.account = values.account;
  }
  const payload = JSON.stringify(event);
  if (values.print) {
    console.log(JSON.stringify(event, null, 2));
    return;
  }
  const env = readEnvironment();
  const url = values.url ?? `http://127.0.0.1:${env.PORT ?? '3000'}/webhooks/stripe`;
  const secret = values.secret ?? configuredSecret(env);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Stripe-Signature': Stripe.webhooks.generateTestHeaderString({ payload, secret }),
    },
    body: payload,
  });
  console.log(`${event.type as string} ${event.id as string} → ${response.status} ${await response.text()}`);
  process.exitCode = response.ok ? 0 : 1;
}

/** `<type>.json`, or `<type>.<variant>.json`; a type with only variants takes the first. */
function fixtureFor(type: string, variant: string | undefined): string {
  const names = fixtureNames();
  const wanted = variant ? `${type}.${variant}` : type;
  if (names.includes(wanted)) {
    return wanted;
  }
  const variants = names.filter((n) => n.startsWith(`${type}.`));
  if (!variant && variants.length > 0) {
    return variants[0];
  }
  throw new Error(`no fixture for ${wanted}; available:\n  ${names.join('\n  ')}`);
}

function configuredSecret(env: Environment): string {
  const fromEnv = env.STRIPE_WEBHOOK_SECRET?.split(',')[0]?.trim();
  if (fromEnv) {
    return fromEnv;
  }
  const file = join(dataDirectory(env), 'dev-secrets.json');
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { STRIPE_WEBHOOK_SECRET?: string };
    if (saved.STRIPE_WEBHOOK_SECRET) {
      return saved.STRIPE_WEBHOOK_SECRET;
    }
  }
  throw new Error(
    'no webhook secret: set STRIPE_WEBHOOK_SECRET, pass --secret, or start the service once (it generates one)',
  );
}

main().catch((error: unknown) => {
  console.error(errorMessage(error));
  process.exitCode = 1;
});
