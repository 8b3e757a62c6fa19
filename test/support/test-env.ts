import { join } from 'node:path';

/** Where global setup compiles the service for the tests that run it as a real process. */
export const TEST_BUILD_DIR = join(__dirname, '..', '..', '.data', 'test-build');
