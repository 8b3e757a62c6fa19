import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEnvironment } from './environment-source';

describe('readEnvironment', () => {
  const FROM_FILE = 'SWP_SPEC_ONLY_IN_DOT_ENV';
  const IN_BOTH = 'SWP_SPEC_IN_DOT_ENV_AND_ENVIRONMENT';
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swp-env-'));
  });
  afterEach(() => {
    delete process.env[IN_BOTH];
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the .env of the given directory, and the real environment wins over it', () => {
    writeFileSync(join(dir, '.env'), `# a comment\n${FROM_FILE}=from-file\n${IN_BOTH}="from file"\n`);
    process.env[IN_BOTH] = 'from-environment';

    const env = readEnvironment(dir);

    expect(env[FROM_FILE]).toBe('from-file');
    expect(env[IN_BOTH]).toBe('from-environment');
    expect(process.env[FROM_FILE]).toBeUndefined();
  });

  it('reads only the environment when the directory has no .env', () => {
    process.env[IN_BOTH] = 'from-environment';

    const env = readEnvironment(dir);

    expect(env[FROM_FILE]).toBeUndefined();
    expect(env[IN_BOTH]).toBe('from-environment');
  });
});
