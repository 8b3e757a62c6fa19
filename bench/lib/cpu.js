'use strict';

const { readFileSync } = require('node:fs');

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 once it is gone. */
function processCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after "(comm) ": state is field 3, utime 14 and stime 15 → indexes 11 and 12 here
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * The same plus the CPU of its children that have exited (cutime, cstime): for redis-server, whose
 * snapshots and AOF rewrites run in forked children.
 */
function processTreeCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Machine-wide CPU counters from /proc/stat: busy and total ticks over all cores. */
function machineTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [, ...values] = line.trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait, iowait };
}

/**
 * Measures CPU over a window: each watched pid's CPU seconds, this process's (the load generator),
 * and the machine's busy share (100% = every core busy). PostgreSQL and anything else running on the
 * machine is what remains of the machine's busy time.
 */
class CpuWindow {
  constructor(pids) {
    this.pids = pids;
    this.start = this.snapshot();
  }

  snapshot() {
    const usage = process.cpuUsage();
    return {
      at: process.hrtime.bigint(),
      pids: this.pids.map(processCpuSeconds),
      self: (usage.user + usage.system) / 1e6,
      machine: machineTicks(),
    };
  }

  end() {
    const end = this.snapshot();
    const wallSeconds = Number(end.at - this.start.at) / 1e9;
    const busy = end.machine.busy - this.start.machine.busy;
    const total = end.machine.total - this.start.machine.total;
    return {
      wallSeconds,
      pidCpuSeconds: end.pids.map((v, i) => v - this.start.pids[i]),
      loadGeneratorCpuSeconds: end.self - this.start.self,
      machineBusyPercent: total > 0 ? (100 * busy) / total : 0,
      machineIowaitPercent: total > 0 ? (100 * (end.machine.iowait - this.start.machine.iowait)) / total : 0,
    };
  }
}

module.exports = { processCpuSeconds, processTreeCpuSeconds, machineTicks, CpuWindow };

/**
 * CPU used by the PostgreSQL backends serving one database (found in pg_stat_activity, read from
 * /proc: only when the server runs on this machine; otherwise the figures are NaN). Backends that
 * start during the window count in full, those that end during it are missed (pools keep theirs).
 */
class BackendCpuWindow {
  constructor(server, database) {
    this.server = server;
    this.database = database;
  }

  async pids() {
    return this.server.admin(async (c) => {
      const { rows } = await c.query(
        'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [this.database],
      );
      return rows.map((r) => r.pid);
    });
  }

  async begin() {
    const pids = await this.pids();
    this.start = new Map(pids.map((pid) => [pid, processCpuSeconds(pid)]));
    return this;
  }

  async end() {
    const pids = await this.pids();
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(this.server.adminUrl).hostname)) {
      return { cpuSeconds: Number.NaN, backends: pids.length }; // not this machine's processes
    }
    let total = 0;
    for (const pid of pids) {
      total += processCpuSeconds(pid) - (this.start.get(pid) || 0);
    }
    return { cpuSeconds: total, backends: pids.length };
  }
}

module.exports.BackendCpuWindow = BackendCpuWindow;
