import { Injectable, Logger } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AppConfig } from '../config/app-config';
import { EventProcessor } from './event-processor';
import { ClaimedRow, PreClaim } from './queue.repository';
import { RowReleaser } from './row-releaser';

/** The most events one transaction settles. */
export const MAX_SETTLE_BATCH = 32;
/**
 * Storing a delivery should take about this long. When it takes longer (more deliveries than the
 * machine can both store and handle), fewer batches run, so that acknowledgements keep their
 * latency and the backlog grows instead; it is handled once the burst is over.
 */
const STORE_TARGET_MS = 10;
/** With no delivery stored for this long, nothing holds the batches back. */
const STORE_QUIET_MS = 500;

interface Waiting {
  row: ClaimedRow;
  /** When this replica took it (performance.now()). */
  heldSince: number;
}

/**
 * Runs the rows this replica holds (stored by it already held, or claimed), in batches of up to 32,
 * at most WORKER_CONCURRENCY at once; slow event types run alone. At most WORKER_BATCH_SIZE rows are
 * held, each place reserved first; a row that waited half its lease is given back, never run late.
 */
@Injectable()
export class Dispatcher {
  private readonly logger = new Logger(Dispatcher.name);
  /** Written to `locked_by`, so operators can see which replica holds a row. */
  readonly replicaId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly backlog: Waiting[] = [];
  private readonly maxHeld: number;
  private batches = 0;
  /** Moving average of the time deliveries took to store, and when the last one was stored. */
  private storeMs = 0;
  private lastStored = 0;
  private runningRows = 0;
  private reserved = 0;
  private stopping = false;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly config: AppConfig,
    private readonly processor: EventProcessor,
    private readonly releaser: RowReleaser,
  ) {
    this.maxHeld = config.workerBatchSize;
  }

  /** How many more rows this replica can take now. */
  get freeSlots(): number {
    if (this.stopping) {
      return 0;
    }
    return Math.max(0, this.maxHeld - this.backlog.length - this.runningRows - this.reserved);
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** A place for an event about to be inserted already held by this replica, or null when none is free. */
  reserve(): PreClaim | null {
    if (this.reserveUpTo(1) === 0) {
      return null;
    }
    return { token: randomUUID(), lockedBy: this.replicaId, leaseMs: this.processor.leaseMs };
  }

  /** Reserves as many free places as possible, up to `wanted`; returns how many. */
  reserveUpTo(wanted: number): number {
    const places = Math.min(wanted, this.freeSlots);
    this.reserved += places;
    return places;
  }

  /** Gives back reserved places that were not used (a duplicate, an error, a claim that found less). */
  cancel(places = 1): void {
    this.reserved -= places;
    this.wake();
  }

  /** Runs held rows, each in a place reserved for it. */
  start(...rows: ClaimedRow[]): void {
    this.reserved -= rows.length;
    const heldSince = performance.now();
    this.backlog.push(...rows.map((row) => ({ row, heldSince })));
    this.pump();
  }

  /** How long storing a delivery took on this replica: acknowledgements come before batches. */
  noteStored(ms: number): void {
    this.storeMs = 0.9 * this.storeMs + 0.1 * ms;
    this.lastStored = performance.now();
  }

  private get batchLimit(): number {
    return batchLimit(this.config.workerConcurrency, this.storeMs, performance.now() - this.lastStored);
  }

  /** Resolves when a place may be free (or when stopping). */
  waitForSlot(): Promise<void> {
    if (this.freeSlots > 0 || this.stopping) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves true when nothing is held or reserved on this replica, false when `timeoutMs` passes first. */
  async whenIdle(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.backlog.length + this.runningRows + this.reserved > 0) {
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

  /**
   * Stops taking work, gives back the rows not started yet (uncounted, for another replica), and
   * waits, at most one lease, for the batches running to finish.
   */
  async stop(): Promise<void> {
    this.beginStop();
    const waiting = this.backlog.splice(0).map((w) => w.row);
    if (waiting.length > 0) {
      await this.releaser.giveBack(waiting);
    }
    if (!(await this.whenIdle(this.processor.leaseMs))) {
      this.logger.warn({ running: this.runningRows }, 'attempts still running at shutdown; their leases will expire');
    }
  }

  /** Starts batches while there are held rows and free workers. */
  private pump(): void {
    this.giveBackStale();
    while (this.batches < this.batchLimit && this.backlog.length > 0) {
      const batch = this.nextBatch();
      this.batches++;
      this.runningRows += batch.length;
      this.processor
        .process(batch, () => this.stopping)
        .catch((error: unknown) =>
          this.logger.error({ events: batch.map((r) => r.stripeEventId), err: error }, 'batch crashed'),
        )
        .finally(() => {
          this.batches--;
          this.runningRows -= batch.length;
          this.wake();
          this.pump();
        });
    }
  }

  /** The oldest held row and, unless it runs alone, up to 31 more that may run with it. */
  private nextBatch(): ClaimedRow[] {
    const first = this.backlog.shift() as Waiting;
    if (this.processor.runsAlone(first.row.eventType)) {
      return [first.row];
    }
    const batch = [first.row];
    for (let i = 0; i < this.backlog.length && batch.length < MAX_SETTLE_BATCH;) {
      if (this.processor.runsAlone(this.backlog[i].row.eventType)) {
        i++;
      } else {
        batch.push(this.backlog.splice(i, 1)[0].row);
      }
    }
    return batch;
  }

  /** Rows that waited half their lease go back to the queue, for whichever replica is free first. */
  private giveBackStale(): void {
    const limit = performance.now() - this.processor.leaseMs / 2;
    if (this.backlog.length === 0 || this.backlog[0].heldSince >= limit) {
      return; // the oldest row is first
    }
    const stale = this.backlog.filter((w) => w.heldSince < limit);
    if (stale.length === 0) {
      return;
    }
    this.backlog.splice(0, this.backlog.length, ...this.backlog.filter((w) => w.heldSince >= limit));
    this.logger.warn({ events: stale.length }, 'held rows waited half their lease; given back');
    void this.releaser.giveBack(stale.map((w) => w.row)).finally(() => this.wake());
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) {
      resolve();
    }
  }
}

/**
 * Batches allowed at once, given how long deliveries took to store on average and how long ago the
 * last one was: all of them when storing is quick or nothing is being stored, half past the target,
 * one past twice the target.
 */
export function batchLimit(concurrency: number, storeMs: number, sinceLastStoredMs: number): number {
  if (sinceLastStoredMs > STORE_QUIET_MS || storeMs <= STORE_TARGET_MS) {
    return concurrency;
  }
  return storeMs > 2 * STORE_TARGET_MS ? 1 : Math.ceil(concurrency / 2);
}
