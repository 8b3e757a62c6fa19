import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './api';

export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  /** Counts the loads that have ended (answered or failed): each one a new value. */
  settled: number;
  reload: () => void;
  /** Loads again without the loading state, keeping what is shown until the answer comes (polling). */
  refresh: () => void;
}

/** Loads `load()` whenever `deps` change, keeping loading and error states. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean; settled: number }>({
    loading: true,
    settled: 0,
  });
  const [round, setRound] = useState(0);
  const quiet = useRef(false);
  useEffect(() => {
    let live = true;
    const keep = quiet.current;
    quiet.current = false;
    if (!keep) {
      setState((s) => ({ ...s, loading: true, error: undefined }));
    }
    load().then(
      (data) => live && setState((s) => ({ data, loading: false, settled: s.settled + 1 })),
      (error: unknown) =>
        live &&
        setState((s) => ({
          data: keep ? s.data : undefined,
          error: errorText(error),
          loading: false,
          settled: s.settled + 1,
        })),
    );
    return () => {
      live = false;
    };
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  const refresh = useCallback(() => {
    quiet.current = true;
    setRound((r) => r + 1);
  }, []);
  return { ...state, reload, refresh };
}

export function ErrorBox({ message }: { message: string | undefined }) {
  return message ? (
    <p class="error" role="alert">
      {message}
    </p>
  ) : null;
}

export function Notice({ message }: { message: string | undefined }) {
  return message ? (
    <p class="notice" role="status">
      {message}
    </p>
  ) : null;
}

export function Loading({ when }: { when: boolean }) {
  return when ? (
    <p class="loading" aria-busy="true">
      Loading…
    </p>
  ) : null;
}

/** Any JSON value, pretty-printed as text (never as markup). */
export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre class="json" tabIndex={0} aria-label={label}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function When({ at }: { at: string | null | undefined }) {
  if (!at) {
    return <span class="muted">—</span>;
  }
  const date = new Date(at);
  return (
    <time dateTime={at}>
      {date
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, ' UTC')}
    </time>
  );
}

/** Previous / next over cursor pages: `cursors` is the stack of cursors that led to this page. */
export function Pager(props: {
  cursors: string[];
  next: string | null | undefined;
  onChange: (cursors: string[]) => void;
}) {
  const { cursors, next, onChange } = props;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={cursors.length === 0} onClick={() => onChange([])}>
        First page
      </button>
      <button type="button" disabled={cursors.length === 0} onClick={() => onChange(cursors.slice(0, -1))}>
        Previous
      </button>
      <span class="muted">Page {cursors.length + 1}</span>
      <button type="button" disabled={!next} onClick={() => next && onChange([...cursors, next])}>
        Next
      </button>
    </nav>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function pageQuery(cursors: string[], extra: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(extra)) {
    if (value) {
      params.set(key, value);
    }
  }
  const cursor = cursors[cursors.length - 1];
  if (cursor) {
    params.set('cursor', cursor);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}
