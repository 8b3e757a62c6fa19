import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import type { Environment } from './environment-variables';

/**
 * The process environment over the working directory's `.env`, when there is one (the real
 * environment wins, as with dotenv); the only place that reads process.env.
 */
export function readEnvironment(cwd: string = process.cwd()): Environment {
  const file = join(cwd, '.env');
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  return { ...fromFile, ...process.env };
}
