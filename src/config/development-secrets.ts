import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataDirectory, Environment } from './environment-variables';

interface SavedSecrets {
  STRIPE_WEBHOOK_SECRET?: string;
  ADMIN_API_TOKEN?: string;
  EMBEDDED_POSTGRES_PASSWORD?: string;
}

const FILE_NAME = 'dev-secrets.json';

/**
 * Outside production, a missing webhook secret or admin token is generated once, kept under
 * DATA_DIR (mode 0600) and printed, so that a fresh clone starts; production refuses instead.
 */
export function withDevelopmentSecrets(env: Environment, print: (line: string) => void): Environment {
  if ((env.NODE_ENV ?? 'development').trim() === 'production') {
    return env;
  }
  const dataDir = dataDirectory(env);
  const saved = readSaved(dataDir);
  const result: Environment = { ...env };
  const generated: Array<'STRIPE_WEBHOOK_SECRET' | 'ADMIN_API_TOKEN'> = [];
  const fill = (name: 'STRIPE_WEBHOOK_SECRET' | 'ADMIN_API_TOKEN', make: () => string): void => {
    if ((env[name] ?? '').trim() !== '') {
      return;
    }
    if (!saved[name]) {
      saved[name] = make();
      generated.push(name);
    }
    result[name] = saved[name];
  };
  fill('STRIPE_WEBHOOK_SECRET', () => `whsec_${randomBytes(24).toString('base64url')}`);
  fill('ADMIN_API_TOKEN', () => `dev:${randomBytes(24).toString('base64url')}`);
  if (generated.length > 0) {
    writeSaved(dataDir, saved);
    print(
      `WARNING: ${generated.join(' and ')} ${generated.length > 1 ? 'were' : 'was'} not set; generated for development ` +
        `and saved in ${join(dataDir, FILE_NAME)} (shown this once; set them explicitly in production):`,
    );
    for (const name of generated) {
      print(`  ${name}=${saved[name]}`);
    }
  }
  return result;
}

/** The password of the embedded PostgreSQL superuser, generated on first use and kept with the other dev secrets. */
export function embeddedPostgresPassword(dataDir: string): string {
  const saved = readSaved(dataDir);
  if (!saved.EMBEDDED_POSTGRES_PASSWORD) {
    saved.EMBEDDED_POSTGRES_PASSWORD = randomBytes(18).toString('base64url');
    writeSaved(dataDir, saved);
  }
  return saved.EMBEDDED_POSTGRES_PASSWORD;
}

function readSaved(dataDir: string): SavedSecrets {
  const file = join(dataDir, FILE_NAME);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SavedSecrets) : {};
}

function writeSaved(dataDir: string, saved: SavedSecrets): void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, FILE_NAME);
  writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}
