import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, errorText, signIn, signOut, token, whenSignedOut } from './api';
import { AuditLog } from './pages/audit';
import { CustomerPage, CustomerSearch } from './pages/customer';
import { DeadLetterPage, DeadLetters } from './pages/dead-letters';
import { EventPage, EventSearch } from './pages/event';
import { Overview } from './pages/overview';
import { Reconcile, ReconcileRunPage } from './pages/reconcile';
import { ErrorBox } from './ui';
import './console.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function go(path: string): void {
  location.hash = path;
}

function SignIn({ reason }: { reason: string }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(undefined);
    signIn(value.trim());
    try {
      // Any admin route tells whether the token is accepted.
      await api('GET', '/admin/audit-log?limit=1');
      window.dispatchEvent(new Event('swp-signed-in'));
    } catch (caught) {
      if (!(caught instanceof ApiError && caught.status === 401)) {
        setError(errorText(caught));
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>Webhook console</h1>
      {reason && (
        <p class="error" role="alert" data-testid="sign-in-reason">
          {reason}
        </p>
      )}
      <ErrorBox message={error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label for="token">Admin token (ADMIN_API_TOKEN)</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          required
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy || value.trim() === ''}>
          Sign in
        </button>
      </form>
      <p class="muted">The token is kept in this tab only (sessionStorage) and sent as the bearer token.</p>
    </main>
  );
}

const NAV = [
  { path: '#/overview', label: 'Overview' },
  { path: '#/dead-letters', label: 'Dead letters' },
  { path: '#/events', label: 'Events' },
  { path: '#/customers', label: 'Customers' },
  { path: '#/audit', label: 'Audit log' },
  { path: '#/reconcile', label: 'Reconciliation' },
];

function Page({ hash }: { hash: string }) {
  const [, section, id] = /^#\/([^/]*)\/?(.*)$/.exec(hash) ?? [];
  const param = id ? decodeURIComponent(id) : '';
  switch (section) {
    case 'dead-letters':
      return param ? <DeadLetterPage id={param} /> : <DeadLetters />;
    case 'events':
      return (
        <div>
          <EventSearch onOpen={(value) => go(`#/events/${encodeURIComponent(value)}`)} />
          {param ? <EventPage key={param} id={param} /> : <h1>Events</h1>}
        </div>
      );
    case 'customers':
      return (
        <div>
          <CustomerSearch onOpen={(value) => go(`#/customers/${encodeURIComponent(value)}`)} />
          {param ? <CustomerPage key={param} id={param} /> : <h1>Customers</h1>}
        </div>
      );
    case 'audit':
      return <AuditLog />;
    case 'reconcile':
      return param ? <ReconcileRunPage key={param} id={param} /> : <Reconcile />;
    default:
      return <Overview />;
  }
}

function App() {
  const [signedIn, setSignedIn] = useState(token() !== null);
  const [reason, setReason] = useState('');
  const hash = useHash();
  useEffect(() => {
    whenSignedOut((why) => {
      setReason(why);
      setSignedIn(false);
    });
    const onSignIn = () => {
      setReason('');
      setSignedIn(true);
    };
    window.addEventListener('swp-signed-in', onSignIn);
    return () => window.removeEventListener('swp-signed-in', onSignIn);
  }, []);
  if (!signedIn) {
    return <SignIn reason={reason} />;
  }
  const current = `#/${(/^#\/([^/]*)/.exec(hash) ?? [])[1] || 'overview'}`;
  return (
    <>
      <header>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <strong class="brand">Webhook console</strong>
        <nav aria-label="Pages">
          {NAV.map((n) => (
            <a key={n.path} href={n.path} aria-current={current === n.path ? 'page' : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <button type="button" class="sign-out" onClick={() => signOut('Signed out.')}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page hash={hash} />
      </main>
    </>
  );
}

const root = document.getElementById('root');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
