'use strict';

/** Percentile (0..100) of an array of numbers, by nearest rank; NaN for an empty array. */
function percentile(values, p) {
  if (values.length === 0) {
    return Number.NaN;
  }
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

function summarise(values) {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length ? values.reduce((a, b) => (b > a ? b : a), -Infinity) : Number.NaN,
  };
}

/** A number for a table cell: fixed decimals, thousands separated, '-' for nothing. */
function num(value, decimals = 0) {
  if (value === undefined || value === null || Number.isNaN(value)) {
    return '-';
  }
  return Number(value).toLocaleString('en-US', {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

function ms(value) {
  if (value === undefined || value === null || Number.isNaN(value)) {
    return '-';
  }
  return value >= 100 ? num(value, 0) : value >= 10 ? num(value, 1) : num(value, 2);
}

function mb(bytes) {
  return bytes ? num(bytes / 1024 / 1024, 0) : '-';
}

/** A plain-text table: `rows` are arrays of cells; numeric-looking cells are right-aligned. */
function table(title, header, rows) {
  const all = [header, ...rows].map((row) => row.map((cell) => String(cell ?? '')));
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const numeric = /^[-+]?[\d,.]+(\s?(%|x|ms|s|MB))?$|^-$/;
  const line = (row) =>
    row
      .map((cell, i) => (numeric.test(cell) && i > 0 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [`\n${title}`, line(all[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of all.slice(1)) {
    out.push(line(row));
  }
  return out.join('\n');
}

module.exports = { percentile, summarise, num, ms, mb, table };
