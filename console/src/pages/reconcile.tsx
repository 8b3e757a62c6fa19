import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { ErrorBox, Loading, Notice, Pager, pageQuery, Section, useLoad, When } from '../ui';

interface Run {
  id: string;
  trigger: string;
  actor: string | null;
  since: string | null;
  until: string | null;
  dry_run: boolean;
  status: string;
  listed: number;
  recovered: number;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

export function Reconcile() {
  const [cursors, setCursors] = useState<string[]>([]);
  const runs = useLoad(
    () =>
      api<{ items: Run[]; next_cursor: string | null }>(
        'GET',
        `/admin/reconcile/runs${pageQuery(cursors, { limit: '25' })}`,
      ),
    [cursors],
  );
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [dryRun, setDryRun] = useState(true);
  const [message, setMessage] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const start = async () => {
    setMessage(undefined);
    setError(undefined);
    try {
      const body: Record<string, unknown> = { dry_run: dryRun };
      if (since) {
        body.since = new Date(since).toISOString();
      }
      if (until) {
        body.until = new Date(until).toISOString();
      }
      const result = await api<{ run_id: string }>('POST', '/admin/reconcile', body);
      setMessage(`Run ${result.run_id} started.`);
      runs.reload();
    } catch (caught) {
      setError(errorText(caught));
    }
  };
  return (
    <div>
      <h1>Reconciliation</h1>
      <Section title="Start a run">
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void start();
          }}
        >
          <label>
            Since{' '}
            <input
              type="datetime-local"
              value={since}
              onInput={(e) => setSince((e.target as HTMLInputElement).value)}
            />
          </label>{' '}
          <label>
            Until{' '}
            <input
              type="datetime-local"
              value={until}
              onInput={(e) => setUntil((e.target as HTMLInputElement).value)}
            />
          </label>{' '}
          <label>
            <input
              type="checkbox"
              checked={dryRun}
              onChange={(e) => setDryRun((e.target as HTMLInputElement).checked)}
            />{' '}
            Dry run
          </label>{' '}
          <button type="submit">Start</button>
        </form>
        <Notice message={message} />
        <ErrorBox message={error} />
      </Section>
      <Loading when={runs.loading} />
      <ErrorBox message={runs.error} />
      {runs.data && (
        <>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Started</th>
                  <th>Trigger</th>
                  <th>Status</th>
                  <th>Listed</th>
                  <th>Recovered</th>
                  <th>Range</th>
                  <th>Error</th>
                </tr>
              </thead>
              <tbody>
                {runs.data.items.map((run) => (
                  <tr key={run.id}>
                    <td>
                      <When at={run.started_at} />
                    </td>
                    <td>
                      {run.trigger}
                      {run.actor ? ` (${run.actor})` : ''}
                      {run.dry_run ? ', dry run' : ''}
                    </td>
                    <td class={`status ${run.status}`}>{run.status}</td>
                    <td>{run.listed}</td>
                    <td>{run.recovered}</td>
                    <td>
                      <When at={run.since} /> – <When at={run.until} />
                    </td>
                    <td class="clip">{run.error ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager cursors={cursors} next={runs.data.next_cursor} onChange={setCursors} />
        </>
      )}
    </div>
  );
}
