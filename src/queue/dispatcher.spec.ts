import { batchLimit } from './dispatcher.service';

describe('batchLimit: acknowledgements come before batches', () => {
  it('runs every batch allowed while deliveries store quickly, or when none are being stored', () => {
    expect(batchLimit(8, 4, 10)).toBe(8);
    expect(batchLimit(8, 10, 10)).toBe(8);
    expect(batchLimit(8, 80, 600)).toBe(8); // slow, but the last delivery was stored long ago
  });

  it('runs half of them while storing takes longer than its target, one past twice the target', () => {
    expect(batchLimit(8, 15, 10)).toBe(4);
    expect(batchLimit(7, 15, 10)).toBe(4);
    expect(batchLimit(8, 25, 10)).toBe(1);
    expect(batchLimit(1, 15, 10)).toBe(1);
  });
});
