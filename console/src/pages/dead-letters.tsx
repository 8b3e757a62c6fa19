import { useState } from 'preact/hooks';
import { api, enc, errorText } from '../api';
import { ErrorBox, Json, Loading, Notice, Pager, pageQuery, Section, useLoad, When } from '../ui';

interface DeadLetter {
  id: string;
  stripe_event_id: string;
  event_type: string;
  retry_count: number;
  error: string | null;
  original_timestamp: string | null;
  created_at: string;
}

interface DeadLetterDetail extends DeadLetter {
  payload: unknown;
  resolution: string | null;
  resolved_at: string | null;
  resolved_by: string | null;
}

const PAGE_SIZE = 25;

export function DeadLetters() {
  const [typeInput, setTypeInput] = useState('');
  const [eventType, setEventType] = useState('');
  const [cursors, setCursors] = useState<string[]>([]);
  const list = useLoad(
    () =>
      api<{ items: DeadLetter[]; next_cursor: string | null }>(
        'GET',
        `/admin/dead-letters${pageQuery(cursors, { event_type: eventType, limit: String(PAGE_SIZE) })}`,
      ),
    [eventType, cursors],
  );
  return (
    <div>
      <h1>Dead letters</h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          setEventType(typeInput.trim());
          setCursors([]);
        }}
      >
        <label>
          Event type{' '}
          <input
            value={typeInput}
            placeholder="all types"
            onInput={(e) => setTypeInput((e.target as HTMLInputElement).value)}
          />
        </label>{' '}
        <button type="submit">Filter</button>
      </form>
      <BulkReplay eventType={eventType} onDone={list.reload} />
      <Loading when={list.loading} />
      <ErrorBox message={list.error} />
      {list.data && (
        <>
          {list.data.items.length === 0 ? (
            <p class="muted">No open dead letters{eventType ? ` of type ${eventType}` : ''}.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Dead since</th>
                    <th>Event</th>
                    <th>Type</th>
                    <th>Attempts</th>
                    <th>Error</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.items.map((d) => (
                    <tr key={d.id}>
                      <td>
                        <When at={d.created_at} />
                      </td>
                      <td>
                        <a href={`#/dead-letters/${enc(d.id)}`}>{d.stripe_event_id}</a>
                      </td>
                      <td>{d.event_type}</td>
                      <td>{d.retry_count}</td>
                      <td class="clip">{d.error ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager cursors={cursors} next={list.data.next_cursor} onChange={setCursors} />
        </>
      )}
    </div>
  );
}

/** Bulk replay: a dry-run count first, then a confirmation. */
function BulkReplay({ eventType, onDone }: { eventType: string; onDone: () => void }) {
  const [count, setCount] = useState<number | undefined>();
  const [message, setMessage] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const filter = eventType ? { event_type: eventType } : {};
  const run = async (dryRun: boolean) => {
    setBusy(true);
    setError(undefined);
    setMessage(undefined);
    try {
      const result = await api<{ replayed?: number; would_replay?: number }>('POST', '/admin/dead-letters/replay', {
        ...filter,
        dry_run: dryRun,
      });
      if (dryRun) {
        setCount(result.would_replay ?? 0);
      } else {
        setCount(undefined);
        setMessage(`Replayed ${result.replayed ?? 0} dead letters: they are queued again.`);
        onDone();
      }
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Bulk replay">
      <p class="muted">
        Replays the oldest open dead letters{eventType ? ` of type ${eventType}` : ''} (at most 100 a call).
      </p>
      {count === undefined ? (
        <button type="button" disabled={busy} onClick={() => void run(true)}>
          Count what would be replayed
        </button>
      ) : (
        <p>
          <strong data-testid="would-replay">{count}</strong> dead letters would be replayed.{' '}
          <button type="button" class="danger" disabled={busy || count === 0} onClick={() => void run(false)}>
            Replay {count} now
          </button>{' '}
          <button type="button" disabled={busy} onClick={() => setCount(undefined)}>
            Cancel
          </button>
        </p>
      )}
      <Notice message={message} />
      <ErrorBox message={error} />
    </Section>
  );
}

export function DeadLetterPage({ id }: { id: string }) {
  const item = useLoad(() => api<DeadLetterDetail>('GET', `/admin/dead-letters/${enc(id)}`), [id]);
  const [message, setMessage] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [confirmDiscard, setConfirmDiscard] = useState(false);
  const act = async (method: string, path: string, done: string) => {
    setError(undefined);
    setMessage(undefined);
    try {
      await api(method, path);
      setMessage(done);
      item.reload();
    } catch (caught) {
      setError(errorText(caught));
    }
  };
  const d = item.data;
  return (
    <div>
      <p>
        <a href="#/dead-letters">← Dead letters</a>
      </p>
      <h1>Dead letter</h1>
      <Loading when={item.loading} />
      <ErrorBox message={item.error} />
      {d && (
        <>
          <dl class="fields">
            <dt>Event</dt>
            <dd>
              <a href={`#/events/${enc(d.stripe_event_id)}`}>{d.stripe_event_id}</a>
            </dd>
            <dt>Type</dt>
            <dd>{d.event_type}</dd>
            <dt>Attempts</dt>
            <dd>{d.retry_count}</dd>
            <dt>Created (Stripe)</dt>
            <dd>
              <When at={d.original_timestamp} />
            </dd>
            <dt>Dead since</dt>
            <dd>
              <When at={d.created_at} />
            </dd>
            <dt>Resolution</dt>
            <dd data-testid="resolution">
              {d.resolution ? `${d.resolution} by ${d.resolved_by ?? '?'}` : 'open'}
              {d.resolved_at && (
                <>
                  {' '}
                  (<When at={d.resolved_at} />)
                </>
              )}
            </dd>
          </dl>
          <h2>Error</h2>
          <pre class="json error-text" data-testid="error">
            {d.error ?? '(none)'}
          </pre>
          <div class="actions">
            <button
              type="button"
              onClick={() =>
                void act('POST', `/admin/dead-letters/${enc(d.id)}/replay`, 'Replayed: the event is queued again.')
              }
            >
              Replay
            </button>
            {confirmDiscard ? (
              <>
                <button
                  type="button"
                  class="danger"
                  onClick={() => {
                    setConfirmDiscard(false);
                    void act('DELETE', `/admin/dead-letters/${enc(d.id)}`, 'Discarded: the event will not run again.');
                  }}
                >
                  Yes, discard it
                </button>
                <button type="button" onClick={() => setConfirmDiscard(false)}>
                  Keep it
                </button>
              </>
            ) : (
              <button type="button" onClick={() => setConfirmDiscard(true)}>
                Discard…
              </button>
            )}
          </div>
          <Notice message={message} />
          <ErrorBox message={error} />
          <h2>Payload</h2>
          <Json value={d.payload} label="Event payload" />
        </>
      )}
    </div>
  );
}
