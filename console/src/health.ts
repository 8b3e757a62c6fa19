/** /health/webhooks, which the overview and the reconciliation page read (public: no token). */

export interface Health {
  status: string;
  info?: Record<string, Record<string, unknown>>;
  error?: Record<string, Record<string, unknown>>;
}

/** How sweeps go, from `webhooks` in /health/webhooks; undefined when the answer did not say. */
export interface SweepHealth {
  reconcile: 'disabled' | 'ok' | 'failing' | undefined;
  lastReconcileAt: string | null;
}

/** /health/webhooks answers 503 with the same body when something is down: both are read. */
export async function health(): Promise<Health> {
  const response = await fetch('/health/webhooks', { headers: { Accept: 'application/json' } });
  const body = (await response.json().catch(() => null)) as Health | null;
  if (!body) {
    throw new Error(`The health check answered ${response.status} without figures.`);
  }
  return body;
}

export function component(body: Health | undefined, key: string): Record<string, unknown> | undefined {
  return body?.info?.[key] ?? body?.error?.[key];
}

export function sweepHealth(body: Health | undefined): SweepHealth {
  const webhooks = component(body, 'webhooks');
  const reconcile = webhooks?.reconcile;
  const last = webhooks?.last_reconcile_at;
  return {
    reconcile: reconcile === 'disabled' || reconcile === 'ok' || reconcile === 'failing' ? reconcile : undefined,
    lastReconcileAt: typeof last === 'string' ? last : null,
  };
}
