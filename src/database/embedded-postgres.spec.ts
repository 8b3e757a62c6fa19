import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRootCanHandOver } from './embedded-postgres';

// The checks run before anything is started, so they are tested directly (and run as any user):
// only temp directories are touched, and the umask is restored at once.
describe('checkRootCanHandOver (embedded PostgreSQL as root runs as the user "postgres")', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swp-embedded-'));
    chmodSync(dir, 0o755);
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('names a umask of 077 as the cause, and what to do instead', () => {
    const previous = process.umask(0o077);
    let message = '';
    try {
      checkRootCanHandOver(join(dir, 'postgres'));
    } catch (error) {
      message = (error as Error).message;
    } finally {
      process.umask(previous);
    }
    expect(message).toContain('umask 0077');
    expect(message).toContain('umask 022');
    expect(message).toContain('DATABASE_URL');
  });

  it('names the directory "postgres" cannot enter, with its mode and the chmod that fixes it', () => {
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o700 });
    chmodSync(locked, 0o700);
    const previous = process.umask(0o022);
    try {
      expect(() => checkRootCanHandOver(join(locked, 'project', '.data', 'postgres'))).toThrow(
        `cannot enter ${locked} (mode 700). Allow it (chmod o+x ${locked})`,
      );
    } finally {
      process.umask(previous);
    }
  });
});
