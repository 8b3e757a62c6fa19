import { jsonDeeperThan } from './json-depth';

const nested = (levels: number): string => '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);

describe('jsonDeeperThan', () => {
  it('counts objects and arrays, the outermost value as 1', () => {
    expect(jsonDeeperThan('1', 0)).toBe(false);
    expect(jsonDeeperThan('{}', 0)).toBe(true);
    expect(jsonDeeperThan('{}', 1)).toBe(false);
    expect(jsonDeeperThan('[[1],{"a":[2]}]', 3)).toBe(false);
    expect(jsonDeeperThan('[[1],{"a":[2]}]', 2)).toBe(true);
    expect(jsonDeeperThan(nested(64), 64)).toBe(false);
    expect(jsonDeeperThan(nested(65), 64)).toBe(true);
  });

  it('measures depth, not the number of containers', () => {
    expect(jsonDeeperThan(`[${'{},'.repeat(10_000)}{}]`, 2)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonDeeperThan(JSON.stringify({ a: '{{{{[[[[', b: 'say \\"{[ and "{[' }), 1)).toBe(false);
    expect(jsonDeeperThan(JSON.stringify({ a: 'ends with a backslash\\', b: { c: 1 } }), 1)).toBe(true);
  });

  it('takes 20,000 levels without a stack overflow', () => {
    expect(jsonDeeperThan(nested(20_000), 64)).toBe(true);
    expect(jsonDeeperThan('['.repeat(20_000) + ']'.repeat(20_000), 20_000)).toBe(false);
  });
});
