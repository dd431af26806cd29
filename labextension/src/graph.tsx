// Small SVG views: a layered DAG (steps, lineage) and a line chart (a metric across runs).
// Every string is rendered as React text, never as markup.
import * as React from 'react';

import { niceTicks, padded, tickText } from './views/chart';
import { ArrowMarker, edgePath, fit, layoutGraph, textWidth } from './views/common';

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

const NODE_W = 100;
const NODE_H = 26;
const GAP_X = 14;
const GAP_Y = 30;
const MAX_LABEL_W = 180;

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

/**
 * A DAG drawn at its natural size (the sidebar scrolls; text is never scaled below 11 px), laid out
 * by dagre so an edge never runs behind a node; edges are drawn before nodes, with arrowheads.
 */
export function GraphView(props: {
  nodes: IGraphNode[];
  edges: IGraphEdge[];
  selected?: string | null;
  onNodeClick?: (node: IGraphNode) => void;
  ariaLabel: string;
  rankdir?: 'TB' | 'LR';
}): JSX.Element {
  const { nodes, edges, selected, onNodeClick } = props;
  const sized = nodes.map(n => {
    const [text, cut] = fit(n.label, 11, MAX_LABEL_W);
    return { n, text, cut, width: Math.max(NODE_W, textWidth(text, 11) + 16) };
  });
  const laid = layoutGraph(
    sized.map(s => ({ id: s.n.id, width: s.width, height: NODE_H })),
    edges.map((e, i) => ({ id: `e${i}`, source: e.source, target: e.target })),
    { rankdir: props.rankdir ?? 'TB', nodesep: GAP_X, ranksep: GAP_Y, edgesep: 8, margin: 4 }
  );
  const width = Math.max(1, laid.width);
  const height = Math.max(1, laid.height);
  return (
    <svg
      className="same-nb-graph"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={props.ariaLabel}
    >
      <defs>
        <ArrowMarker id="same-nb-arrow" size={6} className="same-nb-arrowhead" />
      </defs>
      {edges.map((e, i) => {
        const l = laid.edges.get(`e${i}`);
        if (!l) {
          return null;
        }
        return (
          <path key={`e${i}`} className="same-nb-edge" d={edgePath(l.points)} markerEnd="url(#same-nb-arrow)">
            {e.label ? <title>{e.label}</title> : null}
          </path>
        );
      })}
      {sized.map(({ n, text, width: w }) => {
        const p = laid.nodes.get(n.id);
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
            transform={`translate(${p.x - w / 2}, ${p.y - NODE_H / 2})`}
            onClick={onNodeClick ? () => onNodeClick(n) : undefined}
          >
            <title>{n.title || n.label}</title>
            <rect width={w} height={NODE_H} rx={n.kind === 'artifact' ? NODE_H / 2 : 4} />
            <text x={w / 2} y={NODE_H / 2 + 4} textAnchor="middle">
              {text}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** A metric across runs: y axis with "nice" ticks (a constant metric gets a real range), one
 * labelled x tick per run (thinned when crowded), one circle with a <title> per point. */
export function LineChart(props: {
  points: { x: string; y: number }[];
  ariaLabel: string;
  yLabel?: string;
}): JSX.Element {
  const { points } = props;
  const width = 236;
  const height = 150;
  const axis = niceTicks(...padded(Math.min(...points.map(p => p.y)), Math.max(...points.map(p => p.y))), 4);
  const left = Math.max(34, ...axis.ticks.map(t => textWidth(tickText(t), 11) + 12)) + (props.yLabel ? 14 : 0);
  const right = 12;
  const top = 10;
  const bottom = 34;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const band = plotW / Math.max(1, points.length);
  const sy = (v: number) => top + plotH * (1 - (v - axis.lo) / (axis.hi - axis.lo));
  const xy = points.map((p, i) => ({ ...p, cx: left + band * (i + 0.5), cy: sy(p.y) }));
  const widest = Math.max(0, ...points.map(p => textWidth(p.x, 11)));
  const every = Math.max(1, Math.ceil((widest + 6) / band));
  return (
    <svg
      className="same-nb-chart"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={props.ariaLabel}
    >
      {axis.ticks.map(t => (
        <g key={t}>
          <line x1={left} x2={width - right} y1={sy(t)} y2={sy(t)} className="same-nb-gridline" />
          <text x={left - 5} y={sy(t) + 4} textAnchor="end">
            {tickText(t)}
          </text>
        </g>
      ))}
      <line x1={left} y1={top} x2={left} y2={top + plotH} className="same-nb-axis" />
      <line x1={left} y1={top + plotH} x2={width - right} y2={top + plotH} className="same-nb-axis" />
      {props.yLabel ? (
        <text transform={`translate(10, ${top + plotH / 2}) rotate(-90)`} textAnchor="middle">
          {props.yLabel}
        </text>
      ) : null}
      <text x={left + plotW / 2} y={height - 3} textAnchor="middle">
        run
      </text>
      <polyline className="same-nb-line" points={xy.map(p => `${p.cx},${p.cy}`).join(' ')} />
      {xy.map((p, i) => (
        <g key={p.x}>
          <circle cx={p.cx} cy={p.cy} r={3.5} className="same-nb-point">
            <title>{`${p.x}: ${p.y}`}</title>
          </circle>
          {i % every === 0 ? (
            <text x={p.cx} y={top + plotH + 14} textAnchor="middle">
              {p.x}
            </text>
          ) : null}
        </g>
      ))}
    </svg>
  );
}
