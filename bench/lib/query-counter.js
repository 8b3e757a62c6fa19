'use strict';

/**
 * Preloaded with `node --require bench/lib/query-counter.js` into a process under test (profile
 * mode only): counts every statement sent through pg's Client#query, by its first words, and keeps
 * the peaks of process.memoryUsage() (sampled every 100 ms), then writes both to
 * BENCH_QUERY_COUNT_FILE when the process exits. It changes nothing else.
 */
const { writeFileSync } = require('node:fs');
const { Client } = require('pg');

const file = process.env.BENCH_QUERY_COUNT_FILE;
const counts = new Map();
const keys = new Map(); // statement text → its key (the texts are the same constants every time)
let total = 0;

const original = Client.prototype.query;
Client.prototype.query = function countedQuery(config, ...rest) {
  const text = typeof config === 'string' ? config : config && typeof config.text === 'string' ? config.text : '';
  let key = keys.get(text);
  if (key === undefined) {
    key = text.replace(/\s+/g, ' ').trim().slice(0, 90);
    keys.set(text, key);
  }
  counts.set(key, (counts.get(key) || 0) + 1);
  total++;
  return original.call(this, config, ...rest);
};

const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
setInterval(() => {
  const usage = process.memoryUsage();
  for (const k of Object.keys(peak)) {
    peak[k] = Math.max(peak[k], usage[k]);
  }
}, 100).unref();

if (file) {
  process.on('exit', () => {
    const byStatement = Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1]));
    writeFileSync(file, JSON.stringify({ total, byStatement, peakMemoryBytes: peak }, null, 2));
  });
}
