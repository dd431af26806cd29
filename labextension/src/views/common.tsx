// Shared pieces of the main-area views: visibility-aware polling, formatting, status badges, a
// dagre layout helper, text measuring and a pan/zoom SVG canvas. Strings are React text only.
import dagre from '@dagrejs/dagre';
import * as React from 'react';

import { ApiError } from '../api';

/** Whether the widget that renders a view is visible (polling pauses while it is not). */
export const VisibleContext = React.createContext<() => boolean>(() => true);

export function message(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

/**
 * Call `fn` now and every `ms` while the view is visible and `enabled`; a call never overlaps the
 * previous one. `deps` restart the loop (and call at once).
 */
export function usePoll(
  fn: () => Promise<unknown> | unknown,
  ms: number,
  deps: React.DependencyList,
  enabled = true
): void {
  const visible = React.useContext(VisibleContext);
  const ref = React.useRef(fn);
  ref.current = fn;
  React.useEffect(() => {
    if (!enabled) {
      return;
    }
    let stopped = false;
    let timer = 0;
    let first = true;
    const tick = async () => {
      if (stopped) {
        return;
      }
      if (first || visible()) {
        first = false;
        try {
          await ref.current();
        } catch {
          // the caller shows its own errors
        }
      }
      if (!stopped) {
        timer = window.setTimeout(() => void tick(), ms);
      }
    };
    void tick();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, enabled, ms]);
}

/** The size of an element, kept up to date with a ResizeObserver. */
export function useSize(ref: React.RefObject<HTMLElement>): { w: number; h: number } {
  const [size, setSize] = React.useState({ w: 0, h: 0 });
  React.useEffect(() => {
    const el = ref.current;
    if (!el) {
      return;
    }
    const measure = () => setSize(s => (s.w === el.clientWidth && s.h === el.clientHeight ? s : { w: el.clientWidth, h: el.clientHeight }));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [ref]);
  return size;
}

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (value >= 120) {
    const m = Math.floor(value / 60);
    return `${m} min ${Math.round(value - m * 60)} s`;
  }
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(1)} s`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  if (isNaN(d.getTime())) {
    return iso;
  }
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay
    ? d.toLocaleTimeString()
    : `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

/** A parameter or metric value as one short line of text. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  return JSON.stringify(value);
}

export function short(sha: string | null | undefined, n = 10): string {
  return sha ? sha.slice(0, n) : '—';
}

/** A table row's "select for comparison" box: the row's own click toggles it too, so stop that here. */
export function PickCell(props: { run: number; picked: boolean; onToggle: (run: number) => void }): JSX.Element {
  return (
    <td className="same-nb-v-check">
      <input
        type="checkbox"
        aria-label={`select run ${props.run}`}
        checked={props.picked}
        onClick={e => e.stopPropagation()}
        onChange={() => props.onToggle(props.run)}
      />
    </td>
  );
}

/** One header cell per run, the first marked as the base the others are compared with. */
export function RunHeads(props: { runs: number[] }): JSX.Element {
  return (
    <>
      {props.runs.map((id, i) => (
        <th key={id} className="same-nb-v-num">
          {`#${id}`}
          {i === 0 ? <span className="same-nb-v-dim"> (base)</span> : null}
        </th>
      ))}
    </>
  );
}

export const STATUS_ICON: Record<string, string> = {
  pending: '◷',
  running: '↻',
  success: '✓',
  failed: '✗',
  cached: '⟲',
  skipped: '⤼',
  cancelled: '⊘',
  interrupted: '⊘'
};

export function StatusBadge(props: { status: string; cached?: boolean }): JSX.Element {
  const status = props.cached && props.status === 'success' ? 'cached' : props.status;
  return (
    <span className={`same-nb-v-badge same-nb-v-st-${status}`} data-status={status}>
      {`${STATUS_ICON[status] ?? '•'} ${status}`}
    </span>
  );
}

export function Legend(): JSX.Element {
  const items = ['pending', 'running', 'success', 'cached', 'failed', 'skipped', 'cancelled'];
  return (
    <div className="same-nb-v-legend" aria-label="Status colours">
      {items.map(s => (
        <span key={s} className={`same-nb-v-legend-item same-nb-v-st-${s}`}>
          <span className="same-nb-v-swatch" />
          {s}
        </span>
      ))}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Text measuring (canvas) so boxes fit their labels.

let canvasCtx: CanvasRenderingContext2D | null = null;
let fontFamily = '';

export function textWidth(text: string, px: number, weight = 400): number {
  if (!canvasCtx) {
    canvasCtx = document.createElement('canvas').getContext('2d');
    fontFamily =
      getComputedStyle(document.body).getPropertyValue('--jp-ui-font-family').trim() ||
      'system-ui, sans-serif';
  }
  if (!canvasCtx) {
    return text.length * px * 0.6;
  }
  canvasCtx.font = `${weight} ${px}px ${fontFamily}`;
  return canvasCtx.measureText(text).width;
}

/** Cut `text` to fit `max` px (with …); returns the text and whether it was cut. */
export function fit(text: string, px: number, max: number, weight = 400): [string, boolean] {
  if (textWidth(text, px, weight) <= max) {
    return [text, false];
  }
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(text.slice(0, mid) + '…', px, weight) <= max) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return [text.slice(0, Math.max(1, lo)) + '…', true];
}

/**
 * Wrap `text` into at most `lines` lines of `max` px, breaking after _ . / - or spaces when it can
 * (a long name without separators breaks anywhere). Returns the lines and whether text was cut.
 */
export function wrap(
  text: string,
  px: number,
  max: number,
  lines: number,
  weight = 400
): [string[], boolean] {
  const out: string[] = [];
  let rest = text;
  while (rest && out.length < lines) {
    if (textWidth(rest, px, weight) <= max) {
      out.push(rest);
      rest = '';
      break;
    }
    if (out.length === lines - 1) {
      const [cut] = fit(rest, px, max, weight);
      out.push(cut);
      return [out, true];
    }
    let end = rest.length;
    while (end > 1 && textWidth(rest.slice(0, end), px, weight) > max) {
      end--;
    }
    const head = rest.slice(0, end);
    const brk = Math.max(
      head.lastIndexOf(' '),
      head.lastIndexOf('_'),
      head.lastIndexOf('.'),
      head.lastIndexOf('/'),
      head.lastIndexOf('-'),
      head.lastIndexOf(',')
    );
    const at = brk >= Math.floor(end / 3) ? brk + 1 : end;
    out.push(rest.slice(0, at).trimEnd());
    rest = rest.slice(at).trimStart();
  }
  return [out, rest.length > 0];
}

// ---------------------------------------------------------------------------------------------
// Graph layout with dagre.

export interface ILayoutNode {
  id: string;
  width: number;
  height: number;
}

export interface ILayoutEdge {
  id: string;
  source: string;
  target: string;
  labelWidth?: number;
  labelHeight?: number;
}

export interface ILaidOut {
  nodes: Map<string, { x: number; y: number; width: number; height: number }>; // x, y: centre
  edges: Map<string, { points: { x: number; y: number }[]; x?: number; y?: number }>;
  width: number;
  height: number;
}

export function layoutGraph(
  nodes: ILayoutNode[],
  edges: ILayoutEdge[],
  options: { rankdir: 'TB' | 'LR'; nodesep?: number; ranksep?: number; edgesep?: number; margin?: number }
): ILaidOut {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({
    rankdir: options.rankdir,
    nodesep: options.nodesep ?? 40,
    ranksep: options.ranksep ?? 56,
    edgesep: options.edgesep ?? 16,
    marginx: options.margin ?? 16,
    marginy: options.margin ?? 16
  });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set<string>();
  for (const n of nodes) {
    g.setNode(n.id, { width: n.width, height: n.height });
    ids.add(n.id);
  }
  for (const e of edges) {
    if (!ids.has(e.source) || !ids.has(e.target) || e.source === e.target) {
      continue;
    }
    g.setEdge(
      e.source,
      e.target,
      {
        width: e.labelWidth ?? 0,
        height: e.labelHeight ?? 0,
        labelpos: 'c',
        minlen: 1
      },
      e.id
    );
  }
  dagre.layout(g);
  const out: ILaidOut = { nodes: new Map(), edges: new Map(), width: 0, height: 0 };
  for (const id of g.nodes()) {
    const n = g.node(id) as any;
    out.nodes.set(id, { x: n.x, y: n.y, width: n.width, height: n.height });
  }
  for (const e of g.edges()) {
    const label = g.edge(e) as any;
    out.edges.set(e.name as string, { points: label.points ?? [], x: label.x, y: label.y });
  }
  const graph = g.graph() as any;
  out.width = graph.width ?? 0;
  out.height = graph.height ?? 0;
  return out;
}

/** An SVG path through dagre's points: a B-spline (as d3's curveBasis) ending on the last point. */
export function edgePath(points: { x: number; y: number }[]): string {
  if (points.length < 2) {
    return '';
  }
  if (points.length === 2) {
    return `M${points[0].x},${points[0].y}L${points[1].x},${points[1].y}`;
  }
  const p = points;
  let d = `M${p[0].x},${p[0].y}`;
  d += `L${(5 * p[0].x + p[1].x) / 6},${(5 * p[0].y + p[1].y) / 6}`;
  for (let i = 1; i < p.length - 1; i++) {
    const a = p[i - 1];
    const b = p[i];
    const c = p[i + 1];
    d +=
      `C${(2 * a.x + b.x) / 3},${(2 * a.y + b.y) / 3} ` +
      `${(a.x + 2 * b.x) / 3},${(a.y + 2 * b.y) / 3} ` +
      `${(a.x + 4 * b.x + c.x) / 6},${(a.y + 4 * b.y + c.y) / 6}`;
  }
  const a = p[p.length - 2];
  const b = p[p.length - 1];
  d += `C${(2 * a.x + b.x) / 3},${(2 * a.y + b.y) / 3} ${(a.x + 2 * b.x) / 3},${(a.y + 2 * b.y) / 3} ${b.x},${b.y}`;
  return d;
}

export function ArrowMarker(props: { id: string; size?: number; className?: string }): JSX.Element {
  const size = props.size ?? 8;
  return (
    <marker
      id={props.id}
      viewBox="0 0 10 10"
      refX="9"
      refY="5"
      markerWidth={size}
      markerHeight={size}
      markerUnits="userSpaceOnUse"
      orient="auto-start-reverse"
    >
      <path d="M 0 0 L 10 5 L 0 10 z" className={props.className ?? 'same-nb-v-arrowhead'} />
    </marker>
  );
}

// ---------------------------------------------------------------------------------------------
// A pan (drag) and zoom (wheel, buttons) canvas for a laid-out graph.

export interface ICanvasProps {
  width: number; // the graph's size in its own units
  height: number;
  /** The smallest font size (px) drawn in the graph; "fit" never zooms it below 11 px. */
  minFontPx: number;
  /** Fit again when this changes (a new graph); status updates keep the view. */
  fitKey: string;
  align?: 'top' | 'left';
  className?: string;
  ariaLabel: string;
  children: React.ReactNode;
  defs?: React.ReactNode;
  /** Node boxes (graph units, top-left corner) for the overview map shown when the graph overflows. */
  overview?: { id: string; x: number; y: number; w: number; h: number; className?: string }[];
}

const MAP_W = 200;
const MAP_H = 130;

export const READABLE_PX = 11;
const MAX_ZOOM = 3;
const MIN_ZOOM = 0.15;

export function ZoomCanvas(props: ICanvasProps): JSX.Element {
  const box = React.useRef<HTMLDivElement>(null);
  const [view, setView] = React.useState({ k: 1, x: 0, y: 0 });
  const [size, setSize] = React.useState({ w: 0, h: 0 });
  const viewRef = React.useRef(view);
  viewRef.current = view;
  const drag = React.useRef<{ x: number; y: number; vx: number; vy: number; moved: boolean; id: number } | null>(null);
  const suppressClick = React.useRef(false);

  const fitView = React.useCallback(() => {
    const el = box.current;
    if (!el) {
      return;
    }
    const W = el.clientWidth;
    const H = el.clientHeight;
    if (!W || !H || !props.width || !props.height) {
      return;
    }
    const margin = 12;
    const kFit = Math.min((W - 2 * margin) / props.width, (H - 2 * margin) / props.height, 1.25);
    const kMin = READABLE_PX / props.minFontPx;
    const k = Math.max(kFit, kMin);
    const gw = props.width * k;
    const gh = props.height * k;
    const x = gw <= W - 2 * margin ? (W - gw) / 2 : margin;
    const y = gh <= H - 2 * margin ? (props.align === 'top' ? margin : (H - gh) / 2) : margin;
    setView({ k, x, y });
  }, [props.width, props.height, props.minFontPx, props.align]);

  // Track the box size; fit when the graph changes or the box first gets a size.
  React.useEffect(() => {
    const el = box.current;
    if (!el) {
      return;
    }
    const observer = new ResizeObserver(() => setSize({ w: el.clientWidth, h: el.clientHeight }));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  // Fit a new graph; fit again on resize (a side panel opening) unless the user moved the view.
  const fitted = React.useRef('');
  const touched = React.useRef(false);
  React.useEffect(() => {
    if (size.w <= 0 || size.h <= 0) {
      return;
    }
    if (fitted.current !== props.fitKey) {
      fitted.current = props.fitKey;
      touched.current = false;
      fitView();
    } else if (!touched.current) {
      fitView();
    }
  }, [props.fitKey, size, fitView]);

  const zoomAt = (factor: number, cx: number, cy: number) => {
    touched.current = true;
    const v = viewRef.current;
    const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, v.k * factor));
    setView({ k, x: cx - ((cx - v.x) * k) / v.k, y: cy - ((cy - v.y) * k) / v.k });
  };

  // Wheel zoom needs a non-passive listener to keep the page from scrolling.
  React.useEffect(() => {
    const el = box.current;
    if (!el) {
      return;
    }
    const onWheel = (event: WheelEvent) => {
      event.preventDefault();
      const rect = el.getBoundingClientRect();
      const dy = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
      if (event.ctrlKey || !event.shiftKey) {
        zoomAt(Math.exp(-dy * 0.0015), event.clientX - rect.left, event.clientY - rect.top);
      }
    };
    el.addEventListener('wheel', onWheel, { passive: false });
    return () => el.removeEventListener('wheel', onWheel);
  }, []);

  const onPointerDown = (event: React.PointerEvent) => {
    if (event.button !== 0) {
      return;
    }
    const v = viewRef.current;
    drag.current = { x: event.clientX, y: event.clientY, vx: v.x, vy: v.y, moved: false, id: event.pointerId };
  };
  const onPointerMove = (event: React.PointerEvent) => {
    const d = drag.current;
    if (!d) {
      return;
    }
    const dx = event.clientX - d.x;
    const dy = event.clientY - d.y;
    if (!d.moved && Math.abs(dx) + Math.abs(dy) > 4) {
      d.moved = true;
      touched.current = true;
      (event.currentTarget as Element).setPointerCapture(d.id);
    }
    if (d.moved) {
      setView(v => ({ ...v, x: d.vx + dx, y: d.vy + dy }));
    }
  };
  const onPointerUp = () => {
    suppressClick.current = !!drag.current?.moved;
    drag.current = null;
  };

  const center = (): [number, number] => {
    const el = box.current;
    return el ? [el.clientWidth / 2, el.clientHeight / 2] : [0, 0];
  };

  return (
    <div
      className={`same-nb-v-canvas ${props.className ?? ''}`}
      ref={box}
      data-zoom={view.k.toFixed(3)}
      onPointerDown={onPointerDown}
      onPointerMove={onPointerMove}
      onPointerUp={onPointerUp}
      onPointerCancel={onPointerUp}
      onClickCapture={event => {
        if (suppressClick.current) {
          suppressClick.current = false;
          event.stopPropagation();
        }
      }}
    >
      <svg className="same-nb-v-svg" role="img" aria-label={props.ariaLabel} width="100%" height="100%">
        <defs>{props.defs}</defs>
        <g className="same-nb-v-viewport" transform={`translate(${view.x},${view.y}) scale(${view.k})`}>
          {props.children}
        </g>
      </svg>
      {props.overview && size.w && size.h && (props.width * view.k > size.w + 1 || props.height * view.k > size.h + 1) ? (
        <Overview
          width={props.width}
          height={props.height}
          boxes={props.overview}
          view={{ x: -view.x / view.k, y: -view.y / view.k, w: size.w / view.k, h: size.h / view.k }}
          onCenter={(gx, gy) => {
            touched.current = true;
            setView(v => ({ ...v, x: size.w / 2 - gx * v.k, y: size.h / 2 - gy * v.k }));
          }}
        />
      ) : null}
      <div className="same-nb-v-zoombar" onPointerDown={e => e.stopPropagation()}>
        <button className="same-nb-v-zoom-in" title="Zoom in" onClick={() => zoomAt(1.25, ...center())}>
          +
        </button>
        <button className="same-nb-v-zoom-out" title="Zoom out" onClick={() => zoomAt(0.8, ...center())}>
          −
        </button>
        <button className="same-nb-v-zoom-fit" title="Fit the graph (text stays readable)" onClick={() => {
            touched.current = false;
            fitView();
          }}
        >
          fit
        </button>
        <button
          className="same-nb-v-zoom-reset"
          title="Actual size"
          onClick={() => {
            const [cx, cy] = center();
            zoomAt(1 / viewRef.current.k, cx, cy);
          }}
        >
          100%
        </button>
        <span className="same-nb-v-zoom-level">{`${Math.round(view.k * 100)}%`}</span>
      </div>
      <div className="same-nb-v-hint">drag to pan · wheel to zoom</div>
    </div>
  );
}

/** A small map of the whole graph with the visible part outlined; click or drag on it to move there. */
function Overview(props: {
  width: number;
  height: number;
  boxes: { id: string; x: number; y: number; w: number; h: number; className?: string }[];
  view: { x: number; y: number; w: number; h: number };
  onCenter: (x: number, y: number) => void;
}): JSX.Element {
  const s = Math.min(MAP_W / props.width, MAP_H / props.height);
  const w = props.width * s;
  const h = props.height * s;
  const dragging = React.useRef(false);
  const move = (event: React.PointerEvent<SVGSVGElement>) => {
    const r = event.currentTarget.getBoundingClientRect();
    props.onCenter((event.clientX - r.left) / s, (event.clientY - r.top) / s);
  };
  const v = props.view;
  return (
    <div className="same-nb-v-overview" title="Overview: click or drag to move" onPointerDown={e => e.stopPropagation()}>
      <svg
        width={w}
        height={h}
        onPointerDown={e => {
          dragging.current = true;
          e.currentTarget.setPointerCapture(e.pointerId);
          move(e);
        }}
        onPointerMove={e => dragging.current && move(e)}
        onPointerUp={() => (dragging.current = false)}
      >
        {props.boxes.map(b => (
          <rect key={b.id} className={`same-nb-v-overview-node ${b.className ?? ''}`} x={b.x * s} y={b.y * s} width={Math.max(2, b.w * s)} height={Math.max(2, b.h * s)} />
        ))}
        <rect
          className="same-nb-v-overview-view"
          x={Math.max(0, v.x * s)}
          y={Math.max(0, v.y * s)}
          width={Math.max(4, Math.min(w, (v.x + v.w) * s) - Math.max(0, v.x * s))}
          height={Math.max(4, Math.min(h, (v.y + v.h) * s) - Math.max(0, v.y * s))}
        />
      </svg>
    </div>
  );
}
