// Small SVG views: a layered DAG (steps, lineage) and a line chart (a metric across runs).
// Every string is rendered as React text, never as markup.
import * as React from 'react';

export interface IGraphNode {
  id: string;
  label: string;
  kind: string; // "step", "step_run" or "artifact": shapes and colours
  status?: string;
  title?: string;
}

export interface IGraphEdge {
  source: string;
  target: string;
  label?: string;
}

const NODE_W = 116;
const NODE_H = 26;
const GAP_X = 14;
const GAP_Y = 34;
const PAD = 8;

/** Rows of node ids: each node sits one row below its deepest predecessor. */
export function layers(nodes: IGraphNode[], edges: IGraphEdge[]): string[][] {
  const ids = new Set(nodes.map(n => n.id));
  const preds = new Map<string, string[]>(nodes.map(n => [n.id, []]));
  for (const e of edges) {
    if (ids.has(e.source) && ids.has(e.target)) {
      preds.get(e.target)!.push(e.source);
    }
  }
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    if (depth.has(id)) {
      return depth.get(id)!;
    }
    if (visiting.has(id)) {
      return 0; // a cycle: the backend reports it; just avoid looping here
    }
    visiting.add(id);
    const d = Math.max(-1, ...preds.get(id)!.map(depthOf)) + 1;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows: string[][] = [];
  for (const n of nodes) {
    const d = depthOf(n.id);
    (rows[d] = rows[d] || []).push(n.id);
  }
  return rows.filter(r => r && r.length);
}

function shorten(text: string, max = 17): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

export function GraphView(props: {
  nodes: IGraphNode[];
  edges: IGraphEdge[];
  selected?: string | null;
  onNodeClick?: (node: IGraphNode) => void;
  ariaLabel: string;
}): JSX.Element {
  const { nodes, edges, selected, onNodeClick } = props;
  const rows = layers(nodes, edges);
  const pos = new Map<string, { x: number; y: number }>();
  const widest = Math.max(1, ...rows.map(r => r.length));
  const width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X;
  rows.forEach((row, r) => {
    const rowWidth = row.length * NODE_W + (row.length - 1) * GAP_X;
    const x0 = (width - rowWidth) / 2;
    row.forEach((id, i) => {
      pos.set(id, { x: x0 + i * (NODE_W + GAP_X), y: PAD + r * (NODE_H + GAP_Y) });
    });
  });
  const height = PAD * 2 + rows.length * NODE_H + Math.max(0, rows.length - 1) * GAP_Y;
  return (
    <svg
      className="same-nb-graph"
      width="100%"
      viewBox={`0 0 ${width} ${height}`}
      style={{ maxWidth: width, minWidth: Math.min(width, 240) }}
      role="img"
      aria-label={props.ariaLabel}
    >
      <defs>
        <marker
          id="same-nb-arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="6"
          markerHeight="6"
          orient="auto-start-reverse"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" className="same-nb-arrowhead" />
        </marker>
      </defs>
      {edges.map((e, i) => {
        const a = pos.get(e.source);
        const b = pos.get(e.target);
        if (!a || !b) {
          return null;
        }
        const x1 = a.x + NODE_W / 2;
        const y1 = a.y + NODE_H;
        const x2 = b.x + NODE_W / 2;
        const y2 = b.y;
        const mid = (y1 + y2) / 2;
        return (
          <path
            key={`e${i}`}
            className="same-nb-edge"
            d={`M ${x1} ${y1} C ${x1} ${mid}, ${x2} ${mid}, ${x2} ${y2}`}
            markerEnd="url(#same-nb-arrow)"
          >
            {e.label ? <title>{e.label}</title> : null}
          </path>
        );
      })}
      {nodes.map(n => {
        const p = pos.get(n.id);
        if (!p) {
          return null;
        }
        const classes = [
          'same-nb-node',
          `same-nb-node-${n.kind}`,
          n.status ? `same-nb-status-${n.status}` : '',
          selected === n.id ? 'same-nb-node-selected' : '',
          onNodeClick ? 'same-nb-clickable' : ''
        ].join(' ');
        return (
          <g
            key={n.id}
            className={classes}
            data-node-id={n.id}
            data-label={n.label}
            transform={`translate(${p.x}, ${p.y})`}
            onClick={onNodeClick ? () => onNodeClick(n) : undefined}
          >
            <title>{n.title || n.label}</title>
            <rect
              width={NODE_W}
              height={NODE_H}
              rx={n.kind === 'artifact' ? NODE_H / 2 : 4}
            />
            <text x={NODE_W / 2} y={NODE_H / 2 + 4} textAnchor="middle">
              {shorten(n.label)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

export function LineChart(props: {
  points: { x: string; y: number }[];
  ariaLabel: string;
}): JSX.Element {
  const { points } = props;
  const width = 260;
  const height = 110;
  const left = 40;
  const bottom = 18;
  const top = 8;
  const ys = points.map(p => p.y);
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const span = hi - lo || Math.abs(hi) || 1;
  const right = 14;
  const step = points.length > 1 ? (width - left - right) / (points.length - 1) : 0;
  const xy = points.map((p, i) => ({
    ...p,
    cx: left + (points.length > 1 ? i * step : (width - left) / 2),
    cy: top + (height - top - bottom) * (1 - (p.y - lo) / span)
  }));
  const fmt = (v: number) => String(Number(v.toPrecision(3)));
  return (
    <svg
      className="same-nb-chart"
      width="100%"
      viewBox={`0 0 ${width} ${height}`}
      style={{ maxWidth: width }}
      role="img"
      aria-label={props.ariaLabel}
    >
      <line x1={left} y1={top} x2={left} y2={height - bottom} className="same-nb-axis" />
      <line
        x1={left}
        y1={height - bottom}
        x2={width - right / 2}
        y2={height - bottom}
        className="same-nb-axis"
      />
      <text x={left - 4} y={top + 8} textAnchor="end">
        {fmt(hi)}
      </text>
      <text x={left - 4} y={height - bottom} textAnchor="end">
        {fmt(lo)}
      </text>
      <polyline
        className="same-nb-line"
        points={xy.map(p => `${p.cx},${p.cy}`).join(' ')}
      />
      {xy.map(p => (
        <g key={p.x}>
          <circle cx={p.cx} cy={p.cy} r={3} className="same-nb-point">
            <title>{`${p.x}: ${p.y}`}</title>
          </circle>
          <text x={p.cx} y={height - 4} textAnchor="middle">
            {p.x}
          </text>
        </g>
      ))}
    </svg>
  );
}
