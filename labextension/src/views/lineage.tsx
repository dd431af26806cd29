// The Lineage view: what a run read and wrote (and which earlier runs made its inputs), or one
// artifact traced upstream across runs; left to right, full names (wrapped, else a tooltip), short
// hashes, and a flag on files changed since the run that recorded them.
import * as React from 'react';

import { ACTIVE, api, IGraph, IGraphNode } from '../api';
import {
  ArrowMarker,
  edgePath,
  layoutGraph,
  message,
  seconds,
  short,
  READABLE_PX,
  STATUS_ICON,
  textWidth,
  fit,
  usePoll,
  useSize,
  wrap,
  ZoomCanvas
} from './common';

const NAME_PX = 14;
const SMALL_PX = 12;
const NODE_W = 210;
const PAD_X = 12;
const LINE_H = 17;

export interface ILineageArgs {
  path: string;
  runId?: number;
  sha256?: string;
  label?: string;
}

type Target = { kind: 'run'; runId: number } | { kind: 'artifact'; sha256: string; label: string };

function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

interface IBox {
  node: IGraphNode;
  title: string[];
  cut: boolean;
  lines: { text: string; cls: string }[];
  width: number;
  height: number;
  status: string;
}

function describe(node: IGraphNode, ownRun: number | null): IBox {
  const d = node.data || {};
  if (node.kind === 'step_run') {
    const name = ownRun !== null && d.run_id === ownRun ? d.step_name : d.step_name ?? node.label;
    const [title, cut] = wrap(String(name), NAME_PX, NODE_W - 2 * PAD_X - 18, 2, 600);
    const status = d.status === 'success' && d.cache_hit ? 'cached' : String(d.status ?? '');
    const lines = [
      {
        text: `run #${d.run_id} · ${status}${d.duration_s !== null && d.duration_s !== undefined ? ` · ${seconds(d.duration_s)}` : ''}`,
        cls: 'same-nb-v-line'
      }
    ].map(l => ({ ...l, text: fit(l.text, SMALL_PX, NODE_W - 2 * PAD_X)[0] }));
    if (d.code_sha256) {
      lines.push({ text: `code ${short(d.code_sha256, 10)}`, cls: 'same-nb-v-line same-nb-v-mono' });
    }
    return { node, title, cut, lines, width: NODE_W, height: 16 + title.length * 19 + lines.length * LINE_H, status };
  }
  const names: string[] = Array.isArray(d.names) && d.names.length ? d.names : [node.label];
  const [title, cut] = wrap(names.join(', '), NAME_PX, NODE_W - 2 * PAD_X, 2, 600);
  const what = [d.role === 'file' ? 'file' : d.type || d.kind || '', bytes(d.size)].filter(Boolean).join(' · ');
  const shaLine = `sha256 ${short(d.sha256, 10)}`;
  const room = NODE_W - 2 * PAD_X;
  const lines =
    what && textWidth(`${shaLine} · ${what}`, SMALL_PX) <= room
      ? [{ text: `${shaLine} · ${what}`, cls: 'same-nb-v-line' }]
      : [{ text: shaLine, cls: 'same-nb-v-line' }, ...(what ? [{ text: fit(what, SMALL_PX, room)[0], cls: 'same-nb-v-line' }] : [])];
  if (d.modified) {
    const [m] = wrap(`⚠ ${d.modified}`, SMALL_PX, NODE_W - 2 * PAD_X, 2);
    for (const t of m) {
      lines.push({ text: t, cls: 'same-nb-v-line same-nb-v-modified-text' });
    }
  }
  return { node, title, cut, lines, width: NODE_W, height: 16 + title.length * 19 + lines.length * LINE_H, status: d.modified ? 'modified' : '' };
}

function tooltip(node: IGraphNode): string {
  const d = node.data || {};
  if (node.kind === 'step_run') {
    return [
      `step ${d.step_name} of run #${d.run_id}: ${d.status}${d.cache_hit ? ' (cache hit)' : ''}`,
      d.finished_at ? `finished ${d.finished_at}` : '',
      d.parameters ? `parameters: ${JSON.stringify(d.parameters)}` : '',
      d.code_sha256 ? `code sha256 ${d.code_sha256}` : '',
      'click: show this run\'s lineage'
    ]
      .filter(Boolean)
      .join('\n');
  }
  return [
    `${(d.names ?? [node.label]).join(', ')}`,
    `sha256 ${d.sha256}`,
    [d.role, d.type || d.kind, d.size !== null && d.size !== undefined ? `${d.size} bytes` : ''].filter(Boolean).join(', '),
    d.location ? `at ${d.location}` : '',
    d.modified ? `⚠ ${d.modified}` : '',
    'click: trace upstream'
  ]
    .filter(Boolean)
    .join('\n');
}

export function LineageView(props: { args: ILineageArgs }): JSX.Element {
  const { path } = props.args;
  const initial = (): Target | null =>
    props.args.sha256
      ? { kind: 'artifact', sha256: props.args.sha256, label: props.args.label ?? short(props.args.sha256) }
      : props.args.runId !== undefined
        ? { kind: 'run', runId: props.args.runId }
        : null;
  const [target, setTarget] = React.useState<Target | null>(initial);
  const [back, setBack] = React.useState<Target[]>([]);
  const [graph, setGraph] = React.useState<IGraph | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  React.useEffect(() => {
    const t = initial();
    if (t) {
      setTarget(t);
      setBack([]);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.args]);

  // No run or artifact given: the notebook's latest run.
  React.useEffect(() => {
    if (target) {
      return;
    }
    void api
      .runs(path, 1, 0)
      .then(page => {
        const id = page.latest_id ?? page.runs[0]?.id;
        if (id !== undefined && id !== null) {
          setTarget({ kind: 'run', runId: id });
        } else {
          setError('No runs yet: run the notebook as a pipeline to record its lineage.');
        }
      })
      .catch(e => setError(message(e)));
  }, [path, target]);

  const targetKey = target ? (target.kind === 'run' ? `run:${target.runId}` : `artifact:${target.sha256}`) : '';
  const live = !!graph && graph.nodes.some(n => n.kind === 'step_run' && ACTIVE.includes(n.data?.status));
  React.useEffect(() => setGraph(null), [targetKey]);
  usePoll(
    async () => {
      if (!target) {
        return;
      }
      try {
        const g = target.kind === 'run' ? await api.runLineage(path, target.runId) : await api.artifactLineage(path, target.sha256);
        setGraph(g);
        setError(null);
      } catch (e) {
        setError(message(e));
      }
    },
    live ? 1500 : 15000,
    [path, targetKey, live]
  );

  const go = (next: Target) => {
    if (target) {
      setBack(b => [...b, target]);
    }
    setTarget(next);
  };

  const ownRun = target?.kind === 'run' ? target.runId : null;
  const boxes = (graph?.nodes ?? []).map(n => describe(n, ownRun));
  const structure = graph ? `${targetKey}#${graph.nodes.map(n => n.id).join('|')}#${graph.edges.length}` : '';
  const [direction, setDirection] = React.useState<'auto' | 'LR' | 'TB'>('auto');
  const wrapRef = React.useRef<HTMLDivElement>(null);
  const box = useSize(wrapRef);
  const layouts = React.useMemo(() => {
    const nodes = boxes.map(b => ({ id: b.node.id, width: b.width, height: b.height }));
    const edges = (graph?.edges ?? []).map((e, i) => ({ id: `e${i}`, source: e.source, target: e.target }));
    return {
      LR: layoutGraph(nodes, edges, { rankdir: 'LR', nodesep: 20, ranksep: 50, edgesep: 12 }),
      TB: layoutGraph(nodes, edges, { rankdir: 'TB', nodesep: 24, ranksep: 40, edgesep: 12 })
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [structure, boxes.map(b => b.height).join(',')]);
  // Left to right, unless that cannot be shown whole at a readable size and top to bottom shows more.
  const scale = (l: { width: number; height: number }) =>
    box.w && box.h && l.width && l.height ? Math.min((box.w - 24) / l.width, (box.h - 24) / l.height) : 1;
  const readable = READABLE_PX / SMALL_PX;
  const auto: 'LR' | 'TB' =
    scale(layouts.LR) >= readable || scale(layouts.TB) <= scale(layouts.LR) * 1.15 ? 'LR' : 'TB';
  const dir = direction === 'auto' ? auto : direction;
  const laid = layouts[dir];

  const heading = !target
    ? 'Lineage'
    : target.kind === 'run'
      ? `Lineage of run #${target.runId}`
      : `Upstream of ${target.label} (${short(target.sha256)})`;
  const modified = (graph?.nodes ?? []).filter(n => n.kind === 'artifact' && n.data?.modified).length;

  return (
    <div className="same-nb-v-root same-nb-v-lineage">
      <div className="same-nb-v-toolbar">
        <button
          className="jp-mod-styled"
          disabled={!back.length}
          title="Back"
          onClick={() => {
            const prev = back[back.length - 1];
            setBack(b => b.slice(0, -1));
            setTarget(prev);
          }}
        >
          ‹ back
        </button>
        <span className="same-nb-v-title" title={target?.kind === 'artifact' ? `${heading}\nsha256 ${target.sha256}` : heading}>
          {heading}
        </span>
        <span className="same-nb-v-dim" title={path}>
          {path}
        </span>
        <span className="same-nb-v-spacer" />
        {modified ? <span className="same-nb-v-warn">{`⚠ ${modified} file${modified > 1 ? 's' : ''} changed since recorded`}</span> : null}
        {graph?.truncated ? <span className="same-nb-v-dim">truncated: the graph is large</span> : null}
        <span className="same-nb-v-segmented" role="group" aria-label="Layout direction">
          {(['auto', 'LR', 'TB'] as const).map(d => (
            <button
              key={d}
              className={`same-nb-v-seg ${direction === d ? 'same-nb-v-seg-on' : ''}`}
              title={d === 'auto' ? 'Left to right when it fits, else top to bottom' : d === 'LR' ? 'Left to right' : 'Top to bottom'}
              onClick={() => setDirection(d)}
            >
              {d === 'auto' ? `auto (${auto === 'LR' ? '→' : '↓'})` : d === 'LR' ? '→' : '↓'}
            </button>
          ))}
        </span>
      </div>
      {error ? <p className="same-nb-v-error-line">{error}</p> : null}
      <div className="same-nb-v-summary">
        <span className="same-nb-v-key">
          <span className="same-nb-v-key-step" /> step run
        </span>
        <span className="same-nb-v-key">
          <span className="same-nb-v-key-artifact" /> artifact (value or file) — click to trace it upstream
        </span>
        <span className="same-nb-v-key">
          <span className="same-nb-v-key-modified" /> changed since the run
        </span>
      </div>
      <div className="same-nb-v-canvaswrap" ref={wrapRef}>
      {graph && boxes.length ? (
        <ZoomCanvas
          width={laid.width}
          height={laid.height}
          minFontPx={SMALL_PX}
          fitKey={`${structure}#${dir}`}
          ariaLabel={heading}
          className="same-nb-v-lineage-canvas"
          defs={<ArrowMarker id="same-nb-v-arrow-l" />}
          overview={boxes.flatMap(b => {
            const p = laid.nodes.get(b.node.id);
            return p
              ? [{ id: b.node.id, x: p.x - p.width / 2, y: p.y - p.height / 2, w: p.width, h: p.height, className: b.node.kind === 'step_run' ? `same-nb-v-st-${b.status}` : b.status === 'modified' ? 'same-nb-v-st-failed' : '' }]
              : [];
          })}
        >
          <g className="same-nb-v-edges">
            {graph.edges.map((e, i) => {
              const l = laid.edges.get(`e${i}`);
              return l ? (
                <path key={i} className={`same-nb-v-edge same-nb-v-edge-${e.kind}`} d={edgePath(l.points)} markerEnd="url(#same-nb-v-arrow-l)">
                  <title>{`${e.kind}: ${e.name}`}</title>
                </path>
              ) : null;
            })}
          </g>
          <g className="same-nb-v-nodes">
            {boxes.map(b => {
              const p = laid.nodes.get(b.node.id);
              if (!p) {
                return null;
              }
              const x = p.x - p.width / 2;
              const y = p.y - p.height / 2;
              const step = b.node.kind === 'step_run';
              const root = graph.root === b.node.id;
              const classes = [
                'same-nb-v-node',
                step ? 'same-nb-v-lnode-step' : 'same-nb-v-lnode-artifact',
                step ? `same-nb-v-st-${b.status}` : '',
                b.status === 'modified' ? 'same-nb-v-modified' : '',
                root ? 'same-nb-v-root-node' : ''
              ].join(' ');
              return (
                <g
                  key={b.node.id}
                  className={classes}
                  data-node-id={b.node.id}
                  data-label={b.node.label}
                  transform={`translate(${x},${y})`}
                  onClick={() => {
                    const d = b.node.data || {};
                    if (!step) {
                      go({ kind: 'artifact', sha256: d.sha256, label: (d.names ?? [b.node.label])[0] });
                    } else if (d.run_id !== ownRun) {
                      go({ kind: 'run', runId: d.run_id });
                    }
                  }}
                >
                  <title>{tooltip(b.node)}</title>
                  <rect className="same-nb-v-box" width={p.width} height={p.height} rx={step ? 6 : 14} />
                  {step ? <rect className="same-nb-v-stripe" width={6} height={p.height} rx={3} /> : null}
                  {b.title.map((t, i) => (
                    <text
                      key={`t${i}`}
                      className="same-nb-v-name same-nb-v-label"
                      x={step ? PAD_X + 18 : PAD_X}
                      y={22 + i * 19}
                      data-truncated={b.cut && i === b.title.length - 1 ? 'true' : undefined}
                    >
                      {t}
                    </text>
                  ))}
                  {step ? (
                    <text className="same-nb-v-icon" x={PAD_X} y={22}>
                      {STATUS_ICON[b.status] ?? '•'}
                    </text>
                  ) : null}
                  {b.lines.map((l, i) => (
                    <text key={`l${i}`} className={`${l.cls} same-nb-v-label`} x={PAD_X} y={22 + b.title.length * 19 + i * LINE_H}>
                      {l.text}
                    </text>
                  ))}
                </g>
              );
            })}
          </g>
        </ZoomCanvas>
      ) : (
        <p className="same-nb-v-empty">{error ? '' : 'Loading the lineage…'}</p>
      )}
      </div>
    </div>
  );
}
