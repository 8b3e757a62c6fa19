'use strict';

const { readFileSync } = require('node:fs');

/** Where a frame's code lives: a package, Node's core, the app, or V8's pseudo-frames. */
function origin(callFrame) {
  const url = callFrame.url || '';
  const name = callFrame.functionName;
  if (!url) {
    if (name === '(idle)' || name === '(garbage collector)' || name === '(program)' || name === '(root)') {
      return name;
    }
    return '(native)';
  }
  if (url.startsWith('node:')) {
    return 'node core';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/dist/src/');
  if (dist >= 0) {
    return `app: ${url.slice(dist + '/dist/src/'.length).split('/')[0]}/`;
  }
  if (url.includes('/bench/')) {
    return 'bench';
  }
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url) {
  if (!url) {
    return '';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    return url.slice(nm + '/node_modules/'.length);
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) {
    return url.slice(dist + 1);
  }
  return url.replace(/^file:\/\//, '').replace(/^.*\/bench\//, 'bench/');
}

/**
 * Summarises a V8 .cpuprofile: self time by function and by origin, and "attributed" time (each
 * sample charged to the nearest frame on its stack that is not Node core or native, so that, say,
 * an HMAC computed for stripe-node counts for stripe). Only samples inside [fromUs, toUs] (V8's
 * monotonic clock in microseconds, the same clock as process.hrtime) count, when given.
 */
function summariseProfile(file, { fromUs, toUs, top = 25 } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) {
    for (const child of n.children || []) {
      parent.set(child, n.id);
    }
  }
  const self = new Map();
  const byOrigin = new Map();
  const attributed = new Map();
  let totalUs = 0;
  let idleUs = 0;
  let socketWriteUs = 0;
  let t = profile.startTime;
  const samples = profile.samples;
  const deltas = profile.timeDeltas;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i];
    const weight = i + 1 < deltas.length ? deltas[i + 1] : 0;
    if ((fromUs !== undefined && t < fromUs) || (toUs !== undefined && t > toUs)) {
      continue;
    }
    const node = nodes.get(samples[i]);
    const cf = node.callFrame;
    totalUs += weight;
    const o = origin(cf);
    if (o === '(idle)') {
      idleUs += weight;
      continue;
    }
    if (
      !cf.url &&
      (cf.functionName === 'writev' || cf.functionName === 'writeBuffer' || cf.functionName === 'writeUtf8String')
    ) {
      socketWriteUs += weight;
    }
    const key = `${cf.functionName || '(anonymous)'}  ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) || 0) + weight);
    byOrigin.set(o, (byOrigin.get(o) || 0) + weight);
    let id = node.id;
    let charged = o;
    while (id !== undefined) {
      const frameOrigin = origin(nodes.get(id).callFrame);
      if (frameOrigin !== 'node core' && frameOrigin !== '(native)') {
        charged = frameOrigin;
        break;
      }
      id = parent.get(id);
    }
    attributed.set(charged, (attributed.get(charged) || 0) + weight);
  }
  const busyUs = totalUs - idleUs;
  const rank = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, percentOfBusy: busyUs ? (100 * us) / busyUs : 0 }));
  return {
    file,
    windowMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    // Native socket writes (statements to PostgreSQL, responses). A sample lands here also while the
    // thread waits for a core after the write woke PostgreSQL (2 cores, all busy): read it as "handing
    // work to PostgreSQL", not as CPU spent writing.
    socketWriteMs: socketWriteUs / 1000,
    topSelf: rank(self).slice(0, top),
    byOrigin: rank(byOrigin),
    attributed: rank(attributed),
  };
}

module.exports = { summariseProfile };
