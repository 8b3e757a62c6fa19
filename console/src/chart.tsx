import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Bucket {
  start: string;
  received: number;
  processed: number;
  retried: number;
  dead: number;
}

const SERIES: Array<{ key: keyof Omit<Bucket, 'start'>; label: string; stroke: string }> = [
  { key: 'received', label: 'received', stroke: '#2563eb' },
  { key: 'processed', label: 'processed', stroke: '#16a34a' },
  { key: 'retried', label: 'retried', stroke: '#d97706' },
  { key: 'dead', label: 'dead', stroke: '#dc2626' },
];

/** Received / processed / retried / dead per bucket, drawn by uPlot on a canvas. */
export function StatsChart({ buckets, title }: { buckets: Bucket[]; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) {
      return;
    }
    const data: uPlot.AlignedData = [
      buckets.map((b) => Date.parse(b.start) / 1000),
      ...SERIES.map((s) => buckets.map((b) => b[s.key])),
    ];
    const size = () => ({ width: Math.max(280, element.clientWidth), height: 240 });
    const plot = new uPlot(
      {
        ...size(),
        title,
        series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, width: 2 }))],
        axes: [{}, { label: 'events' }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      data,
      element,
    );
    const resized = () => plot.setSize(size());
    window.addEventListener('resize', resized);
    return () => {
      window.removeEventListener('resize', resized);
      plot.destroy();
    };
  }, [buckets, title]);
  return <div class="chart" ref={box} role="img" aria-label={`${title}: ${summary(buckets)}`} />;
}

function summary(buckets: Bucket[]): string {
  return SERIES.map((s) => `${buckets.reduce((sum, b) => sum + b[s.key], 0)} ${s.label}`).join(', ');
}

export function totals(buckets: Bucket[]): Record<string, number> {
  return Object.fromEntries(SERIES.map((s) => [s.key, buckets.reduce((sum, b) => sum + b[s.key], 0)]));
}
