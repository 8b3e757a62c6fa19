import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';

/**
 * Whether this replica is shutting down. Readiness answers 503 from the moment shutdown begins
 * (main calls `beginShutdown` on SIGTERM, before anything else stops).
 */
@Injectable()
export class LifecycleService implements BeforeApplicationShutdown {
  private shuttingDown = false;

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  beforeApplicationShutdown(): void {
    this.beginShutdown();
  }
}
