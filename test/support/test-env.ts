import { join } from 'node:path';

/** Where global setup compiles the service for the tests that run it as a real process. */
export const TEST_BUILD_DIR = join(__dirname, '..', '..', '.data', 'test-build');

/** Refuses to run against a database that does not look like a test database (tests create and drop databases). */
export function testDatabaseGuard(url: string): void {
  const name = new URL(url).pathname.replace(/^\//, '');
  if (!/test/i.test(name)) {
    throw new Error(`TEST_DATABASE_URL must name a test database (its name must contain "test"); got "${name}"`);
  }
}
