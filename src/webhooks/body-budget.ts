/**
 * Bytes of webhook bodies being received at once, across requests. A body takes its share before
 * its first byte is read (its Content-Length, or chunk by chunk without one) and gives it back when
 * its answer is sent or its connection is gone; what does not fit is refused at once, so that slow or
 * stalled uploads cannot pile up memory the allocator then keeps.
 */
export class BodyBudget {
  private used = 0;

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  reserve(bytes: number): boolean {
    if (this.used + bytes > this.capacity) {
      return false;
    }
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}
