import { useState } from 'preact/hooks';
import { api, enc, errorText } from '../api';
import { ErrorBox, Json, Loading, Notice, useLoad, When } from '../ui';

interface EventRecord {
  stripe_event_id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_error: string | null;
  received_at: string;
  processed_at: string | null;
  payload?: unknown;
}

interface Change {
  table: string;
  key: Record<string, unknown>;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

interface DryRun {
  changes: Change[];
  outcome: string;
  error: string | null;
}

export function EventSearch({ onOpen }: { onOpen: (id: string) => void }) {
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
        Stripe event id{' '}
        <input value={value} placeholder="evt_…" onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      </label>{' '}
      <button type="submit">Open</button>
    </form>
  );
}

export function EventPage({ id }: { id: string }) {
  const event = useLoad(() => api<EventRecord>('GET', `/admin/events/${enc(id)}?include=payload`), [id]);
  const [dryRun, setDryRun] = useState<DryRun | undefined>();
  const [message, setMessage] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const preview = async () => {
    setBusy(true);
    setError(undefined);
    setMessage(undefined);
    try {
      setDryRun(await api<DryRun>('POST', `/admin/events/${enc(id)}/reprocess?dry_run=true`));
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  const reprocess = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await api('POST', `/admin/events/${enc(id)}/reprocess`);
      setDryRun(undefined);
      setMessage('Queued again: the handler will run shortly.');
      event.reload();
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  const e = event.data;
  return (
    <div>
      <h1>Event</h1>
      <Loading when={event.loading} />
      <ErrorBox message={event.error} />
      {e && (
        <>
          <dl class="fields">
            <dt>Id</dt>
            <dd>{e.stripe_event_id}</dd>
            <dt>Type</dt>
            <dd>{e.event_type}</dd>
            <dt>Status</dt>
            <dd data-testid="event-status" class={`status ${e.status}`}>
              {e.status}
            </dd>
            <dt>Attempts</dt>
            <dd>{e.attempts}</dd>
            <dt>Received</dt>
            <dd>
              <When at={e.received_at} />
            </dd>
            <dt>Processed</dt>
            <dd>
              <When at={e.processed_at} />
            </dd>
            <dt>Last error</dt>
            <dd class="error-text">{e.last_error ?? '—'}</dd>
          </dl>
          <div class="actions">
            <button type="button" disabled={busy} onClick={() => void preview()}>
              Reprocess… (preview the changes first)
            </button>
            <button type="button" onClick={event.reload}>
              Refresh
            </button>
          </div>
          <Notice message={message} />
          <ErrorBox message={error} />
          {dryRun && (
            <DryRunView
              result={dryRun}
              busy={busy}
              onConfirm={() => void reprocess()}
              onCancel={() => setDryRun(undefined)}
            />
          )}
          <h2>Payload</h2>
          <Json value={e.payload} label="Event payload" />
        </>
      )}
    </div>
  );
}

function DryRunView(props: { result: DryRun; busy: boolean; onConfirm: () => void; onCancel: () => void }) {
  const { result } = props;
  return (
    <section class="card dry-run" aria-label="What reprocessing would change" data-testid="dry-run">
      <h2>What reprocessing would change</h2>
      {result.outcome === 'failed' && (
        <p class="error" role="alert">
          The handler would fail: {result.error}
        </p>
      )}
      {result.outcome === 'ignored' && <p>No handler runs for this event: it would only be marked ignored.</p>}
      {result.outcome === 'processed' && result.changes.length === 0 && <p>The handler would change no row.</p>}
      {result.changes.map((change, i) => (
        <ChangeView key={i} change={change} />
      ))}
      <p class="muted">Nothing was changed: this ran in a transaction that was rolled back.</p>
      <div class="actions">
        <button type="button" class="danger" disabled={props.busy} onClick={props.onConfirm}>
          Reprocess for real
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </section>
  );
}

function ChangeView({ change }: { change: Change }) {
  const kind = change.before === null ? 'insert' : change.after === null ? 'delete' : 'update';
  const columns = [...new Set([...Object.keys(change.before ?? {}), ...Object.keys(change.after ?? {})])];
  const shown = kind === 'update' ? columns.filter((c) => !same(change.before?.[c], change.after?.[c])) : columns;
  return (
    <div class="change">
      <h3>
        <span class={`kind ${kind}`}>{kind}</span> {change.table} {JSON.stringify(change.key)}
      </h3>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Column</th>
              <th>Before</th>
              <th>After</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((column) => (
              <tr key={column}>
                <td>{column}</td>
                <td class="before">{show(change.before, column)}</td>
                <td class="after">{show(change.after, column)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function show(row: Record<string, unknown> | null, column: string): string {
  if (row === null) {
    return '';
  }
  const value = row[column];
  return typeof value === 'string' ? value : JSON.stringify(value);
}
