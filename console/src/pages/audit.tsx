import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorBox, Loading, Pager, pageQuery, useLoad, When } from '../ui';

interface AuditItem {
  id: number;
  actor: string;
  action: string;
  target: string | null;
  result: string;
  details: Record<string, unknown> | null;
  created_at: string;
}

export function AuditLog() {
  const [cursors, setCursors] = useState<string[]>([]);
  const page = useLoad(
    () =>
      api<{ items: AuditItem[]; next_cursor: string | null }>(
        'GET',
        `/admin/audit-log${pageQuery(cursors, { limit: '50' })}`,
      ),
    [cursors],
  );
  return (
    <div>
      <h1>Audit log</h1>
      <button type="button" onClick={page.reload}>
        Refresh
      </button>
      <Loading when={page.loading} />
      <ErrorBox message={page.error} />
      {page.data && (
        <>
          <div class="table-wrap">
            <table data-testid="audit">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Who</th>
                  <th>Action</th>
                  <th>Target</th>
                  <th>Result</th>
                </tr>
              </thead>
              <tbody>
                {page.data.items.map((item) => (
                  <tr key={item.id}>
                    <td>
                      <When at={item.created_at} />
                    </td>
                    <td>{item.actor}</td>
                    <td>{item.action}</td>
                    <td class="clip">{item.target ?? ''}</td>
                    <td>{item.result}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager cursors={cursors} next={page.data.next_cursor} onChange={setCursors} />
        </>
      )}
    </div>
  );
}
