import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { LifecycleService } from '../core/lifecycle.service';
import { withTimeout } from '../common/with-timeout';
import { Database } from '../database/database';
import { pendingMigrations } from '../database/migrator';

const PING_TIMEOUT_MS = 2_000;

@Injectable()
export class DatabaseIndicators {
  /** Once every migration is seen applied, it stays so for this process's life. */
  private migrationsApplied = false;

  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly db: Database,
    private readonly lifecycle: LifecycleService,
  ) {}

  /**
   * `SELECT 1`, bounded twice: the outer timeout bounds the answer (a wait for a connection included),
   * the query's own one destroys a connection that never answered instead of leaving it checked out.
   */
  async ping<Key extends string>(key: Key): Promise<HealthIndicatorResult<Key>> {
    const check = this.indicators.check(key);
    if (this.lifecycle.isShuttingDown) {
      return check.down({ message: 'shutting down' });
    }
    try {
      await withTimeout(this.db.queryWithin(PING_TIMEOUT_MS, 'SELECT 1'), PING_TIMEOUT_MS);
      return check.up();
    } catch {
      return check.down({ message: 'database unreachable' });
    }
  }

  async migrations<Key extends string>(key: Key): Promise<HealthIndicatorResult<Key>> {
    const check = this.indicators.check(key);
    if (!this.migrationsApplied) {
      try {
        const pending = await withTimeout(
          pendingMigrations(async (text, params) => (await this.db.queryWithin(PING_TIMEOUT_MS, text, params)).rows),
          PING_TIMEOUT_MS,
        );
        if (pending.length > 0) {
          return check.down({ message: 'migrations pending', pending });
        }
        this.migrationsApplied = true;
      } catch {
        return check.down({ message: 'database unreachable' });
      }
    }
    return check.up();
  }
}
