import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, loadAll } from 'js-yaml';
import { VARIABLE_NAMES } from '../../src/config/environment-variables';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are free-form YAML */
const root = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const known = new Set<string>(VARIABLE_NAMES);

describe('deployment files stay in step with the service', () => {
  const manifests = readdirSync(join(root, 'deploy', 'kubernetes'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadAll(read(join('deploy', 'kubernetes', f))) as any[]);
  const byKind = (kind: string): any => manifests.find((m) => m.kind === kind);

  it('configures only variables the service reads (ConfigMap, Secret, compose)', () => {
    const keys = [
      ...Object.keys(byKind('ConfigMap').data),
      ...Object.keys(byKind('Secret').stringData),
      ...Object.keys((load(read('docker-compose.yml')) as any).services['stripe-webhook-processor'].environment),
    ];
    expect(keys.filter((k) => !known.has(k))).toEqual([]);
    expect(Object.keys(byKind('Secret').stringData)).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'STRIPE_WEBHOOK_SECRET', 'ADMIN_API_TOKEN']),
    );
  });

  it('probes the routes the service serves, and drains within the grace period', () => {
    const pod = byKind('Deployment').spec.template.spec;
    const container = pod.containers[0];
    expect(container.livenessProbe.httpGet.path).toBe('/health/live');
    // Per replica: the backlog figures of /health/webhooks are shared, and would take every replica
    // out of rotation at once.
    expect(container.readinessProbe.httpGet.path).toBe('/health/ready');
    expect(container.envFrom.map((e: any) => (e.secretRef ?? e.configMapRef).name)).toEqual([
      'stripe-webhook-processor',
      'stripe-webhook-processor',
    ]);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    const handlerTimeoutSeconds = Number(byKind('ConfigMap').data.HANDLER_TIMEOUT_MS) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(handlerTimeoutSeconds + 10);
    expect(byKind('PodDisruptionBudget').spec.selector.matchLabels).toEqual(
      byKind('Deployment').spec.selector.matchLabels,
    );
  });
});
