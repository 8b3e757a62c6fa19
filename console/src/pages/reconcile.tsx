import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc, errorText } from '../api';
import { health, sweepHealth } from '../health';
import { ErrorBox, type Loaded, Loading, Pager, pageQuery, Section, useLoad, When } from '../ui';

interface Run {
  id: string;
  trigger: 'schedule' | 'admin';
  actor: string | null;
  since: string;
  until: string;
  dry_run: boolean;
  status: 'running' | 'succeeded' | 'failed';
  listed: number;
  recovered: number;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

const PAGE_SIZE = 25;
/** How often a running run is read again; a sweep takes seconds to minutes. */
const POLL_MS = 1_000;

const NO_KEY =
  'No Stripe API key is configured: STRIPE_API_KEY is not set on this service, so it does not pull events ' +
  'from Stripe and no run can start. Set it (a key that can read Events) and restart the service. ' +
  'Earlier runs stay listed below.';

/**
 * While `active`, loads again POLL_MS after each load ends: never two at once, so a slow answer is
 * not dropped for a newer request.
 */
function usePolling(active: boolean, loaded: Loaded<unknown>): void {
  const { settled, refresh } = loaded;
  useEffect(() => {
    if (!active) {
      return undefined;
    }
    const timer = setTimeout(refresh, POLL_MS);
    return () => clearTimeout(timer);
  }, [active, settled, refresh]);
}

/** A datetime-local value read as UTC, the zone every time in the console is shown in. */
function utc(value: string, name: string): string {
  const date = new Date(`${value}Z`);
  if (Number.isNaN(date.getTime())) {
    throw new Error(`${name} is not a date and time.`);
  }
  return date.toISOString();
}

function trigger(run: Run): string {
  return run.trigger === 'admin' ? `admin (${run.actor ?? '?'})` : 'schedule';
}

function recovered(run: Run): string {
  return run.dry_run ? `would recover ${run.recovered}` : String(run.recovered);
}

export function Reconcile() {
  const [cursors, setCursors] = useState<string[]>([]);
  const runs = useLoad(
    () =>
      api<{ items: Run[]; next_cursor: string | null }>(
        'GET',
        `/admin/reconcile/runs${pageQuery(cursors, { limit: String(PAGE_SIZE) })}`,
      ),
    [cursors],
  );
  const sweeps = useLoad(health, []);
  const { reconcile, lastReconcileAt } = sweepHealth(sweeps.data);
  const running = runs.data?.items.some((run) => run.status === 'running') ?? false;
  usePolling(running, runs);
  // A run that stored events moves the last successful sweep: read it again once runs settle.
  const wasRunning = useRef(false);
  useEffect(() => {
    if (wasRunning.current && !running) {
      sweeps.refresh();
    }
    wasRunning.current = running;
  }, [running]);
  return (
    <div>
      <h1>Reconciliation</h1>
      <p class="muted">
        A run lists the events Stripe created in a time range (Stripe keeps 30 days) and stores those that never arrived
        by webhook, to be handled like delivered ones; a dry run only counts them. Times are UTC.
      </p>
      <Section title="Sweeps">
        <Loading when={sweeps.loading} />
        <ErrorBox message={sweeps.error} />
        {sweeps.data && (
          <>
            <dl class="figures" data-testid="sweeps">
              <div>
                <dt>reconcile</dt>
                <dd class={reconcile === 'failing' ? 'bad' : undefined}>{reconcile ?? '—'}</dd>
              </div>
              <div>
                <dt>last successful sweep</dt>
                <dd class="when">{lastReconcileAt ? <When at={lastReconcileAt} /> : 'never'}</dd>
              </div>
            </dl>
            {reconcile === 'disabled' && (
              <p class="warning" role="status" data-testid="no-key">
                {NO_KEY}
              </p>
            )}
            {reconcile === 'failing' && (
              <p class="error" role="status">
                The last sweep failed (its error is in the list below); the next sweep lists its range again.
              </p>
            )}
          </>
        )}
      </Section>
      <StartRun
        onDone={() => {
          // The new run, or the sweep that holds the way (409), is on the first page.
          if (cursors.length > 0) {
            setCursors([]);
          } else {
            runs.refresh();
          }
        }}
        onNoKey={sweeps.refresh}
      />
      <Section title="Runs">
        <Loading when={runs.loading} />
        <ErrorBox message={runs.error} />
        {runs.data &&
          (runs.data.items.length === 0 && cursors.length === 0 ? (
            <p class="muted">No reconciliation runs yet.</p>
          ) : (
            <>
              <div class="table-wrap">
                <table class="runs" data-testid="runs">
                  <thead>
                    <tr>
                      <th>Started</th>
                      <th>Trigger</th>
                      <th>Mode</th>
                      <th>Status</th>
                      <th>Events created (range)</th>
                      <th>Listed</th>
                      <th>Recovered</th>
                      <th>Finished</th>
                      <th>Error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {runs.data.items.map((run) => (
                      <tr key={run.id} data-run={run.id}>
                        <td>
                          <a href={`#/reconcile/${enc(run.id)}`} aria-label={`Run ${run.id}`}>
                            <When at={run.started_at} />
                          </a>
                        </td>
                        <td>{trigger(run)}</td>
                        <td>{run.dry_run ? 'dry run' : 'recover'}</td>
                        <td class={`status ${run.status}`}>{run.status}</td>
                        <td>
                          <When at={run.since} /> – <When at={run.until} />
                        </td>
                        <td>{run.listed}</td>
                        <td>{recovered(run)}</td>
                        <td>
                          <When at={run.finished_at} />
                        </td>
                        <td class="clip">{run.error ?? ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <Pager cursors={cursors} next={runs.data.next_cursor} onChange={setCursors} />
            </>
          ))}
      </Section>
    </div>
  );
}

type Outcome = { runId: string; dryRun: boolean } | { error: string };

function StartRun({ onDone, onNoKey }: { onDone: () => void; onNoKey: () => void }) {
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [dryRun, setDryRun] = useState(true);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | undefined>();
  const start = async () => {
    setBusy(true);
    setOutcome(undefined);
    try {
      const body: { dry_run: boolean; since?: string; until?: string } = { dry_run: dryRun };
      if (since) {
        body.since = utc(since, 'Since');
      }
      if (until) {
        body.until = utc(until, 'Until');
      }
      const result = await api<{ run_id: string }>('POST', '/admin/reconcile', body);
      setOutcome({ runId: result.run_id, dryRun });
    } catch (caught) {
      setOutcome({ error: await startError(caught, onNoKey) });
    } finally {
      setBusy(false);
      onDone();
    }
  };
  return (
    <Section title="Start a run">
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void start();
        }}
      >
        <label>
          Since (UTC){' '}
          <input
            name="since"
            type="datetime-local"
            step={1}
            value={since}
            onInput={(e) => setSince((e.target as HTMLInputElement).value)}
          />
        </label>{' '}
        <label>
          Until (UTC){' '}
          <input
            name="until"
            type="datetime-local"
            step={1}
            value={until}
            onInput={(e) => setUntil((e.target as HTMLInputElement).value)}
          />
        </label>{' '}
        <label>
          <input
            name="dry_run"
            type="checkbox"
            checked={dryRun}
            onChange={(e) => setDryRun((e.target as HTMLInputElement).checked)}
          />{' '}
          Dry run (count only, store nothing)
        </label>{' '}
        <button type="submit" class={dryRun ? undefined : 'danger'} disabled={busy}>
          {dryRun ? 'Start a dry run' : 'Start a run'}
        </button>
      </form>
      <p class="muted">
        Leave the times empty for the scheduled sweep&apos;s range: from its checkpoint (less 60 s) to now less the
        grace period. Since is at most 30 days ago.
      </p>
      {outcome && 'runId' in outcome && (
        <p class="notice" role="status" data-testid="started">
          {outcome.dryRun ? 'Dry run' : 'Run'} <a href={`#/reconcile/${enc(outcome.runId)}`}>{outcome.runId}</a>{' '}
          started; its row below follows it until it ends.
        </p>
      )}
      <ErrorBox message={outcome && 'error' in outcome ? outcome.error : undefined} />
    </Section>
  );
}

/**
 * A 503 means either no key on the service or a database outage: /health/webhooks tells which, so
 * that the operator is not told to retry what cannot work until the key is set.
 */
async function startError(caught: unknown, onNoKey: () => void): Promise<string> {
  if (caught instanceof ApiError && caught.status === 503) {
    const now = await health().then(sweepHealth, () => undefined);
    if (now?.reconcile === 'disabled') {
      onNoKey();
      return 'Not started: no Stripe API key is configured (STRIPE_API_KEY is not set on this service).';
    }
  }
  return errorText(caught);
}

export function ReconcileRunPage({ id }: { id: string }) {
  const run = useLoad(() => api<Run>('GET', `/admin/reconcile/runs/${enc(id)}`), [id]);
  const r = run.data;
  usePolling(r?.status === 'running', run);
  return (
    <div>
      <p>
        <a href="#/reconcile">← Reconciliation</a>
      </p>
      <h1>Reconciliation run</h1>
      <Loading when={run.loading} />
      <ErrorBox message={run.error} />
      {r && (
        <>
          <dl class="fields" data-testid="run">
            <dt>Id</dt>
            <dd>{r.id}</dd>
            <dt>Status</dt>
            <dd class={`status ${r.status}`} data-testid="run-status">
              {r.status}
            </dd>
            <dt>Trigger</dt>
            <dd>{trigger(r)}</dd>
            <dt>Mode</dt>
            <dd>
              {r.dry_run ? 'dry run: counts the missing events, stores nothing' : 'recover: stores missing events'}
            </dd>
            <dt>Events created from</dt>
            <dd>
              <When at={r.since} />
            </dd>
            <dt>Events created until</dt>
            <dd>
              <When at={r.until} />
            </dd>
            <dt>Listed</dt>
            <dd>{r.listed}</dd>
            <dt>{r.dry_run ? 'Would recover' : 'Recovered'}</dt>
            <dd>{r.recovered}</dd>
            <dt>Started</dt>
            <dd>
              <When at={r.started_at} />
            </dd>
            <dt>Finished</dt>
            <dd>{r.finished_at ? <When at={r.finished_at} /> : 'not yet: this page follows it'}</dd>
          </dl>
          {r.error && (
            <>
              <h2>Error</h2>
              <pre class="json error-text" data-testid="run-error">
                {r.error}
              </pre>
            </>
          )}
        </>
      )}
    </div>
  );
}
