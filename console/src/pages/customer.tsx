import { useState } from 'preact/hooks';
import { api, ApiError, enc } from '../api';
import { ErrorBox, Loading, Pager, pageQuery, Section, useLoad, When } from '../ui';

interface Entitlements {
  customer_id: string;
  user_id: string | null;
  active: boolean;
  status: string | null;
  subscription_ids: string[];
  price_ids: string[];
  product_ids: string[];
  features: string[];
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  updated_at: string;
}

interface Subscription {
  stripe_subscription_id: string;
  status: string;
  deleted: boolean;
  price_ids: string[];
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  updated_at: string;
}

interface Wallet {
  balances: Record<string, number>;
  auto_recharge_payment_method: string | null;
  entries: Array<{
    id: string;
    amount: number;
    currency: string;
    payment_intent: string;
    source_event_id: string;
    created_at: string;
  }>;
}

interface Usage {
  period_start: string;
  period_end: string;
  used: number;
}

interface CustomerEvent {
  stripe_event_id: string;
  event_type: string;
  status: string;
  attempts: number;
  created: string | null;
  received_at: string;
  last_error: string | null;
}

export function CustomerSearch({ onOpen }: { onOpen: (id: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) {
          onOpen(value.trim());
        }
      }}
    >
      <label>
        Customer id{' '}
        <input value={value} placeholder="cus_…" onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      </label>{' '}
      <button type="submit">Open</button>
    </form>
  );
}

/** A 409 (no current period) or 404 is an answer here, not a failure of the page. */
async function optional<T>(load: Promise<T>): Promise<T | string> {
  try {
    return await load;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 409)) {
      return error.message;
    }
    throw error;
  }
}

export function CustomerPage({ id }: { id: string }) {
  const entitlements = useLoad(() => optional(api<Entitlements>('GET', `/v1/customers/${enc(id)}/entitlements`)), [id]);
  const subscriptions = useLoad(
    () => optional(api<{ items: Subscription[] }>('GET', `/admin/customers/${enc(id)}/subscriptions`)),
    [id],
  );
  const wallet = useLoad(() => optional(api<Wallet>('GET', `/v1/customers/${enc(id)}/wallet`)), [id]);
  const usage = useLoad(() => optional(api<Usage>('GET', `/v1/customers/${enc(id)}/usage`)), [id]);
  const [cursors, setCursors] = useState<string[]>([]);
  const events = useLoad(
    () =>
      api<{ items: CustomerEvent[]; next_cursor: string | null }>(
        'GET',
        `/admin/customers/${enc(id)}/events${pageQuery(cursors, { limit: '25' })}`,
      ),
    [id, cursors],
  );
  const e = entitlements.data;
  const w = wallet.data;
  const u = usage.data;
  return (
    <div>
      <h1>Customer {id}</h1>
      <div class="grid">
        <Section title="Entitlements">
          <Loading when={entitlements.loading} />
          <ErrorBox message={entitlements.error} />
          {typeof e === 'string' && <p class="muted">{e}</p>}
          {e && typeof e !== 'string' && (
            <dl class="fields" data-testid="entitlements">
              <dt>Access</dt>
              <dd class={e.active ? 'ok' : 'bad'}>{e.active ? 'active' : 'no access'}</dd>
              <dt>User</dt>
              <dd>{e.user_id ?? '—'}</dd>
              <dt>Features</dt>
              <dd>{e.features.join(', ') || '—'}</dd>
              <dt>Updated</dt>
              <dd>
                <When at={e.updated_at} />
              </dd>
            </dl>
          )}
        </Section>
        <Section title="Wallet">
          <Loading when={wallet.loading} />
          <ErrorBox message={wallet.error} />
          {typeof w === 'string' && <p class="muted">{w}</p>}
          {w && typeof w !== 'string' && (
            <>
              <dl class="fields" data-testid="wallet">
                {Object.entries(w.balances).map(([currency, amount]) => (
                  <>
                    <dt key={`${currency}-t`}>Balance {currency}</dt>
                    <dd key={`${currency}-d`}>{amount}</dd>
                  </>
                ))}
                <dt>Auto-recharge</dt>
                <dd>{w.auto_recharge_payment_method ?? '—'}</dd>
              </dl>
              {w.entries.length > 0 && (
                <ul class="plain">
                  {w.entries.map((entry) => (
                    <li key={entry.id}>
                      {entry.amount} {entry.currency} from {entry.payment_intent} (<When at={entry.created_at} />)
                    </li>
                  ))}
                </ul>
              )}
            </>
          )}
        </Section>
        <Section title="Usage">
          <Loading when={usage.loading} />
          <ErrorBox message={usage.error} />
          {typeof u === 'string' && <p class="muted">{u}</p>}
          {u && typeof u !== 'string' && (
            <p data-testid="usage">
              {u.used} used from <When at={u.period_start} /> to <When at={u.period_end} />
            </p>
          )}
        </Section>
      </div>
      <Section title="Subscriptions">
        <Loading when={subscriptions.loading} />
        <ErrorBox message={subscriptions.error} />
        {typeof subscriptions.data === 'string' && <p class="muted">{subscriptions.data}</p>}
        {subscriptions.data && typeof subscriptions.data !== 'string' && (
          <div class="table-wrap">
            <table data-testid="subscriptions">
              <thead>
                <tr>
                  <th>Subscription</th>
                  <th>Status</th>
                  <th>Prices</th>
                  <th>Period ends</th>
                </tr>
              </thead>
              <tbody>
                {subscriptions.data.items.map((s) => (
                  <tr key={s.stripe_subscription_id}>
                    <td>{s.stripe_subscription_id}</td>
                    <td class={`status ${s.status}`}>
                      {s.status}
                      {s.deleted ? ' (deleted)' : ''}
                    </td>
                    <td>{s.price_ids.join(', ') || '—'}</td>
                    <td>
                      <When at={s.current_period_end} />
                      {s.cancel_at_period_end ? ' (cancels then)' : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {subscriptions.data.items.length === 0 && <p class="muted">No subscription received.</p>}
          </div>
        )}
      </Section>
      <Section title="Events">
        <Loading when={events.loading} />
        <ErrorBox message={events.error} />
        {events.data && (
          <>
            <div class="table-wrap">
              <table data-testid="customer-events">
                <thead>
                  <tr>
                    <th>Created</th>
                    <th>Event</th>
                    <th>Type</th>
                    <th>Status</th>
                    <th>Attempts</th>
                    <th>Last error</th>
                  </tr>
                </thead>
                <tbody>
                  {events.data.items.map((item) => (
                    <tr key={item.stripe_event_id}>
                      <td>
                        <When at={item.created ?? item.received_at} />
                      </td>
                      <td>
                        <a href={`#/events/${enc(item.stripe_event_id)}`}>{item.stripe_event_id}</a>
                      </td>
                      <td>{item.event_type}</td>
                      <td class={`status ${item.status}`}>{item.status}</td>
                      <td>{item.attempts}</td>
                      <td class="clip">{item.last_error ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager cursors={cursors} next={events.data.next_cursor} onChange={setCursors} />
          </>
        )}
      </Section>
    </div>
  );
}
