// A metric chart with real axes: y numeric with "nice" ticks; x numeric (a parameter), categorical
// (a parameter with text values) or time (when each run started). Every point has an SVG <title>
// naming its run. Text is drawn at a fixed pixel size (the SVG is never scaled down).
import * as React from 'react';

import { textWidth, valueText } from './common';

export interface IChartPoint {
  run: number;
  x: number | string; // a number, a category, or epoch milliseconds for time
  y: number;
  detail?: string;
  series?: string; // points of one series share a colour and, on a numeric axis, a line
}

// Distinguishable on light and dark themes; a series past the last reuses the palette.
const SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

export type XKind = 'number' | 'category' | 'time';

/** Ticks at 1, 2 or 5 × 10^k covering [lo, hi]; a zero span is widened so ticks mean something. */
export function niceTicks(lo: number, hi: number, count = 5): { lo: number; hi: number; ticks: number[] } {
  if (!isFinite(lo) || !isFinite(hi)) {
    return { lo: 0, hi: 1, ticks: [0, 1] };
  }
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw) ?? 10 * mag;
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= end + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return { lo: start, hi: end, ticks };
}

const TIME_STEPS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400].map(
  s => s * 1000
);

export function timeTicks(lo: number, hi: number): { lo: number; hi: number; ticks: number[]; step: number } {
  if (hi === lo) {
    lo -= 30000;
    hi += 30000;
  }
  const raw = (hi - lo) / 5;
  const step = TIME_STEPS.find(s => s >= raw) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const offset = new Date().getTimezoneOffset() * 60000; // ticks on local round times
  const start = Math.floor((lo - offset) / step) * step + offset;
  const end = Math.ceil((hi - offset) / step) * step + offset;
  const ticks: number[] = [];
  for (let v = start; v <= end; v += step) {
    ticks.push(v);
  }
  return { lo: start, hi: end, ticks, step };
}

function timeLabel(ms: number, step: number, span: number): string {
  const d = new Date(ms);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: step < 60000 ? '2-digit' : undefined });
  if (span >= 86400000 || step >= 86400000) {
    return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })}${step < 86400000 ? ` ${hm}` : ''}`;
  }
  return hm;
}

/** Widen [lo, hi] by 4% on each side so no point sits on an axis line. */
export function padded(lo: number, hi: number): [number, number] {
  const pad = (hi - lo) * 0.04;
  // never below zero for values that are all positive (a loss, a count)
  return [lo >= 0 ? Math.max(0, lo - pad) : lo - pad, hi + pad];
}

export function tickText(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) {
    return v.toExponential(1);
  }
  return String(Number(v.toPrecision(6)));
}

function compareCat(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a !== '' && b !== '' && !isNaN(na) && !isNaN(nb)) {
    return na - nb;
  }
  return a.localeCompare(b);
}

export function MetricChart(props: {
  points: IChartPoint[];
  xKind: XKind;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  seriesLabel?: string; // what the series are (a legend names each)
}): JSX.Element {
  const { points, xKind } = props;
  const series = [...new Set(points.map(p => p.series).filter((s): s is string => s !== undefined))];
  const colorOf = (p: IChartPoint) =>
    p.series === undefined ? undefined : SERIES_COLORS[series.indexOf(p.series) % SERIES_COLORS.length];
  const width = props.width ?? 760;
  const height = props.height ?? 340;
  const ys = points.map(p => p.y);
  const yAxis = niceTicks(...padded(Math.min(...ys), Math.max(...ys)));
  const yWidth = Math.max(...yAxis.ticks.map(t => textWidth(tickText(t), 12))) + 14;
  const m = { left: Math.max(56, yWidth + 28), right: 44, top: 18, bottom: 58 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const sy = (v: number) => m.top + plotH * (1 - (v - yAxis.lo) / (yAxis.hi - yAxis.lo));

  let sx: (p: IChartPoint) => number;
  let xTicks: { at: number; text: string }[] = [];
  if (xKind === 'category') {
    const cats = [...new Set(points.map(p => String(p.x)))].sort(compareCat);
    const band = plotW / Math.max(1, cats.length);
    const index = new Map(cats.map((c, i) => [c, i]));
    // several runs with one value: spread them a little so each point can be hovered
    const seen = new Map<string, number>();
    const slot = new Map<IChartPoint, number>();
    for (const p of points) {
      const k = String(p.x);
      const n = seen.get(k) ?? 0;
      seen.set(k, n + 1);
      slot.set(p, n);
    }
    sx = p => {
      const k = String(p.x);
      const n = seen.get(k) ?? 1;
      const jitter = n > 1 ? ((slot.get(p)! - (n - 1) / 2) * Math.min(14, band / (n + 1))) : 0;
      return m.left + band * (index.get(k)! + 0.5) + jitter;
    };
    xTicks = cats.map((c, i) => ({ at: m.left + band * (i + 0.5), text: c }));
  } else {
    const xs = points.map(p => Number(p.x));
    const axis = xKind === 'time' ? timeTicks(...padded(Math.min(...xs), Math.max(...xs))) : niceTicks(...padded(Math.min(...xs), Math.max(...xs)));
    const scale = (v: number) => m.left + (plotW * (v - axis.lo)) / (axis.hi - axis.lo);
    sx = p => scale(Number(p.x));
    const span = axis.hi - axis.lo;
    xTicks = axis.ticks.map(t => ({
      at: scale(t),
      text: xKind === 'time' ? timeLabel(t, (axis as any).step ?? 60000, span) : tickText(t)
    }));
  }
  // thin out x labels that would overlap
  const widest = Math.max(0, ...xTicks.map(t => textWidth(t.text, 12)));
  const room = xTicks.length > 1 ? Math.abs(xTicks[1].at - xTicks[0].at) : plotW;
  const every = Math.max(1, Math.ceil((widest + 10) / Math.max(1, room)));

  const sorted = [...points].sort((a, b) => (xKind === 'category' ? 0 : Number(a.x) - Number(b.x)));
  const line = xKind === 'time' && !series.length ? sorted.map(p => `${sx(p)},${sy(p.y)}`).join(' ') : '';
  const legendText = (s: string) => `${props.seriesLabel ? `${props.seriesLabel} = ` : ''}${s}`;
  const legendW = Math.max(0, ...series.map(s => textWidth(legendText(s), 12))) + 24;
  const lines =
    xKind === 'category'
      ? []
      : series.map(s => ({ s, points: sorted.filter(p => p.series === s).map(p => `${sx(p)},${sy(p.y)}`).join(' ') }));
  return (
    <svg
      className="same-nb-v-chart"
      width={width}
      height={height}
      role="img"
      aria-label={`${props.yLabel} by ${props.xLabel}`}
    >
      <g className="same-nb-v-grid">
        {yAxis.ticks.map(t => (
          <line key={t} x1={m.left} x2={m.left + plotW} y1={sy(t)} y2={sy(t)} />
        ))}
      </g>
      <line className="same-nb-v-axis" x1={m.left} x2={m.left} y1={m.top} y2={m.top + plotH} />
      <line className="same-nb-v-axis" x1={m.left} x2={m.left + plotW} y1={m.top + plotH} y2={m.top + plotH} />
      <g className="same-nb-v-yticks">
        {yAxis.ticks.map(t => (
          <text key={t} className="same-nb-v-tick" x={m.left - 8} y={sy(t) + 4} textAnchor="end">
            {tickText(t)}
          </text>
        ))}
      </g>
      <g className="same-nb-v-xticks">
        {xTicks.map((t, i) => (
          <g key={i}>
            <line className="same-nb-v-axis" x1={t.at} x2={t.at} y1={m.top + plotH} y2={m.top + plotH + 5} />
            {i % every === 0 ? (
              <text className="same-nb-v-tick same-nb-v-xtick" x={t.at} y={m.top + plotH + 20} textAnchor="middle">
                {t.text}
              </text>
            ) : null}
          </g>
        ))}
      </g>
      <text className="same-nb-v-axis-title" x={m.left + plotW / 2} y={height - 12} textAnchor="middle">
        {props.xLabel}
      </text>
      <text
        className="same-nb-v-axis-title"
        transform={`translate(16, ${m.top + plotH / 2}) rotate(-90)`}
        textAnchor="middle"
      >
        {props.yLabel}
      </text>
      {line ? <polyline className="same-nb-v-line" points={line} /> : null}
      {lines.map(l => (
        <polyline
          key={l.s}
          className="same-nb-v-line same-nb-v-series-line"
          points={l.points}
          style={{ stroke: SERIES_COLORS[series.indexOf(l.s) % SERIES_COLORS.length] }}
        />
      ))}
      {series.length ? (
        <g className="same-nb-v-legend" transform={`translate(${m.left + plotW - legendW}, ${m.top + 4})`}>
          {series.map((s, i) => (
            <g key={s} className="same-nb-v-legend-item" data-series={s} transform={`translate(0, ${i * 16})`}>
              <circle cx={5} cy={5} r={5} style={{ fill: SERIES_COLORS[i % SERIES_COLORS.length] }} />
              <text className="same-nb-v-tick" x={14} y={9}>
                {legendText(s)}
              </text>
            </g>
          ))}
        </g>
      ) : null}
      {points.map(p => (
        <g key={p.run} className="same-nb-v-point" data-run={p.run} data-series={p.series}>
          <circle cx={sx(p)} cy={sy(p.y)} r={5.5} style={colorOf(p) ? { fill: colorOf(p) } : undefined}>
            <title>{`run #${p.run}: ${props.yLabel} = ${valueText(p.y)}${p.detail ? `\n${p.detail}` : ''}`}</title>
          </circle>
          <text className="same-nb-v-point-label" x={sx(p)} y={sy(p.y) - 10} textAnchor="middle">
            {`#${p.run}`}
          </text>
        </g>
      ))}
    </svg>
  );
}
