import { Injectable, Logger } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AppConfig } from '../config/app-config';
import { EventProcessor } from './event-processor';
import { ClaimedRow, PreClaim } from './queue.repository';

/**
 * Runs held events on this replica, at most WORKER_CONCURRENCY at once. A slot is reserved before
 * a row is taken (by an insert already held by this replica, or by a claim) and the reservation
 * becomes the running attempt, so that claims and deliveries together never exceed the limit.
 */
@Injectable()
export class Dispatcher {
  private readonly logger = new Logger(Dispatcher.name);
  /** Written to `locked_by`, so operators can see which replica holds a row. */
  readonly replicaId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private active = 0;
  private reserved = 0;
  private stopping = false;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly config: AppConfig,
    private readonly processor: EventProcessor,
  ) {}

  get freeSlots(): number {
    return this.stopping ? 0 : Math.max(0, this.config.workerConcurrency - this.active - this.reserved);
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** One slot for an event about to be inserted already held by this replica, or null when none is free. */
  reserve(): PreClaim | null {
    if (this.reserveUpTo(1) === 0) {
      return null;
    }
    return { token: randomUUID(), lockedBy: this.replicaId, leaseMs: this.processor.leaseMs };
  }

  /** Reserves as many free slots as possible, up to `wanted`; returns how many. */
  reserveUpTo(wanted: number): number {
    const slots = Math.min(wanted, this.freeSlots);
    this.reserved += slots;
    return slots;
  }

  /** Gives back reserved slots that were not used (a duplicate, an error, a claim that found less). */
  cancel(slots = 1): void {
    this.reserved -= slots;
    this.wake();
  }

  /** Starts a held row in a slot reserved for it. */
  start(row: ClaimedRow): void {
    this.reserved--;
    this.active++;
    this.processor
      .attempt(row)
      .catch((error: unknown) =>
        this.logger.error({ eventId: row.stripeEventId, eventType: row.eventType, err: error }, 'attempt crashed'),
      )
      .finally(() => {
        this.active--;
        this.wake();
      });
  }

  /** Resolves when a slot may be free (or when stopping). */
  waitForSlot(): Promise<void> {
    if (this.freeSlots > 0 || this.stopping) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves true when nothing runs or is reserved on this replica, false when `timeoutMs` passes first. */
  async whenIdle(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.active + this.reserved > 0) {
      if (Date.now() >= deadline) {
        return false;
      }
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, Math.min(250, Math.max(0, deadline - Date.now())))),
      ]);
    }
    return true;
  }

  /** Takes no new work from now on (reservations fail, waiters wake). */
  beginStop(): void {
    this.stopping = true;
    this.wake();
  }

  /** Stops taking work and waits, at most one lease, for what runs to finish. */
  async stop(): Promise<void> {
    this.beginStop();
    if (!(await this.whenIdle(this.processor.leaseMs))) {
      this.logger.warn({ active: this.active }, 'attempts still running at shutdown; their leases will expire');
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) {
      resolve();
    }
  }
}
