import { useState } from 'preact/hooks';
import { api } from '../api';
import { Bucket, StatsChart, totals } from '../chart';
import { component, health, sweepHealth } from '../health';
import { ErrorBox, Loading, Section, useLoad, When } from '../ui';

const WINDOWS = [
  { value: '1h', label: 'Last hour (per minute)' },
  { value: '24h', label: 'Last 24 hours (per quarter-hour)' },
  { value: '7d', label: 'Last 7 days (per hour)' },
];

function figure(value: unknown): string {
  return typeof value === 'number' || typeof value === 'string' ? String(value) : '—';
}

export function Overview() {
  const [window, setWindow] = useState('1h');
  const figures = useLoad(health, []);
  const stats = useLoad(() => api<{ buckets: Bucket[] }>('GET', `/admin/stats?window=${window}`), [window]);
  const webhooks = component(figures.data, 'webhooks');
  const database = component(figures.data, 'database');
  const sweeps = sweepHealth(figures.data);
  return (
    <div>
      <h1>Overview</h1>
      <Section title="Health">
        <Loading when={figures.loading} />
        <ErrorBox message={figures.error} />
        {figures.data && (
          <dl class="figures" data-testid="health">
            <div>
              <dt>Status</dt>
              <dd class={figures.data.status === 'ok' ? 'ok' : 'bad'}>{figures.data.status}</dd>
            </div>
            <div>
              <dt>Database</dt>
              <dd>{figure(database?.status)}</dd>
            </div>
            {(['pending', 'pending_retries', 'dlq_items', 'oldest_pending_age_seconds'] as const).map((key) => (
              <div key={key}>
                <dt>{key.replace(/_/g, ' ')}</dt>
                <dd>{figure(webhooks?.[key])}</dd>
              </div>
            ))}
            <div>
              <dt>reconcile</dt>
              <dd>
                <a href="#/reconcile" class={sweeps.reconcile === 'failing' ? 'bad' : undefined}>
                  {sweeps.reconcile ?? '—'}
                </a>
              </dd>
            </div>
            <div>
              <dt>last reconcile at</dt>
              <dd class="when">
                {sweeps.lastReconcileAt ? <When at={sweeps.lastReconcileAt} /> : sweeps.reconcile ? 'never' : '—'}
              </dd>
            </div>
          </dl>
        )}
        <button type="button" onClick={figures.reload}>
          Refresh
        </button>
      </Section>
      <Section title="Events">
        <label>
          Window{' '}
          <select value={window} onChange={(e) => setWindow((e.target as HTMLSelectElement).value)}>
            {WINDOWS.map((w) => (
              <option key={w.value} value={w.value}>
                {w.label}
              </option>
            ))}
          </select>
        </label>{' '}
        <button type="button" onClick={stats.reload}>
          Refresh
        </button>
        <Loading when={stats.loading} />
        <ErrorBox message={stats.error} />
        {stats.data && (
          <>
            <p class="totals" data-testid="totals">
              {Object.entries(totals(stats.data.buckets)).map(([key, value]) => (
                <span key={key} class={`total ${key}`}>
                  {key}: <strong>{value}</strong>
                </span>
              ))}
            </p>
            <StatsChart buckets={stats.data.buckets} title={WINDOWS.find((w) => w.value === window)?.label ?? ''} />
          </>
        )}
      </Section>
    </div>
  );
}
