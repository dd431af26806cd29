// The Pipeline view: the step DAG (dagre, top to bottom) with each step's live status from a run,
// a run picker, and a side panel with the selected step's live log, error and links.
import * as React from 'react';

import { ACTIVE, api, IInspection, IRun, IRunPage, IStepLog, IStepRun } from '../api';
import { IViewContext } from '../commands';
import {
  ArrowMarker,
  edgePath,
  fit,
  Legend,
  layoutGraph,
  message,
  seconds,
  short,
  STATUS_ICON,
  StatusBadge,
  textWidth,
  usePoll,
  valueText,
  when,
  ZoomCanvas
} from './common';
import { StepResourceRows } from './resources';

const NAME_PX = 14;
const SMALL_PX = 12;
const EDGE_PX = 12;
const NODE_H = 66;
const MIN_W = 190;
const MAX_W = 300;
const EDGE_LABEL_MAX = 190;

export interface IPipelineArgs {
  path: string;
  runId?: number;
}

/** What a step shows: its status in the chosen run (or "not run"), timings and cache state. */
export function stepStatus(run: IRun | null, step: IStepRun | undefined): string {
  if (step) {
    return step.status === 'success' && step.cache_hit ? 'cached' : step.status;
  }
  if (run && ACTIVE.includes(run.status)) {
    return 'pending';
  }
  return run ? 'notrun' : 'none';
}

function elapsed(step: IStepRun): number | null {
  if (step.started_at) {
    const t = Date.parse(step.started_at.endsWith('Z') || /[+-]\d\d:?\d\d$/.test(step.started_at) ? step.started_at : step.started_at + 'Z');
    if (!isNaN(t)) {
      return Math.max(0, (Date.now() - t) / 1000);
    }
  }
  return null;
}

function nodeLines(status: string, step: IStepRun | undefined): [string, string] {
  if (!step) {
    return [status === 'pending' ? 'pending' : status === 'notrun' ? 'not in this run' : 'no run yet', ''];
  }
  if (step.status === 'running') {
    const t = elapsed(step);
    const wait = step.kernel_wait_s !== null && step.kernel_wait_s !== undefined
      ? `kernel wait ${seconds(step.kernel_wait_s)} · click for the log` : 'click for the live log';
    return [`running${t !== null ? ` · ${seconds(t)}` : ''}`, wait];
  }
  const compute = step.compute_s ?? step.duration_s;
  const first = `${status}${compute !== null && compute !== undefined ? ` · ${seconds(compute)}` : ''}`;
  const parts: string[] = [];
  if (step.kernel_wait_s !== null && step.kernel_wait_s !== undefined) {
    parts.push(`kernel ${seconds(step.kernel_wait_s)}`);
  }
  if (step.cache_hit) {
    parts.push('cache hit');
  } else if (['success', 'failed'].includes(step.status)) {
    parts.push('cache miss');
  } else if (step.reason) {
    parts.push(step.reason);
  }
  return [first, parts.join(' · ')];
}

function runLabel(r: IRun): string {
  return `#${r.id}${r.name ? ` ${r.name}` : ''} — ${r.status} — ${when(r.created_at)}`;
}

function StepPanel(props: {
  path: string;
  run: IRun | null;
  name: string;
  step: IStepRun | undefined;
  inspection: IInspection | null;
  context: IViewContext;
  onClose: () => void;
}): JSX.Element {
  const { path, run, name, step, context } = props;
  const [log, setLog] = React.useState<IStepLog | null>(null);
  const [logError, setLogError] = React.useState<string | null>(null);
  const running = !!step && ACTIVE.includes(step.status);
  const runId = run?.id;
  React.useEffect(() => {
    setLog(null);
    setLogError(null);
  }, [runId, name]);
  usePoll(
    async () => {
      if (runId === undefined || !step) {
        return;
      }
      try {
        setLog(await api.stepLog(path, runId, name));
        setLogError(null);
      } catch (error) {
        setLogError(message(error));
      }
    },
    running ? 1000 : 600000,
    [path, runId, name, running, !!step]
  );
  const spec = props.inspection?.pipeline.steps.find(s => s.name === name);
  const err = step?.error ?? null;
  const text = log?.text ?? step?.log_tail ?? '';
  const logRef = React.useRef<HTMLPreElement>(null);
  React.useEffect(() => {
    if (logRef.current) {
      logRef.current.scrollTop = logRef.current.scrollHeight;
    }
  }, [text]);
  const status = stepStatus(run, step);
  return (
    <aside className="same-nb-v-side" data-step={name}>
      <header className="same-nb-v-side-head">
        <h2 title={name}>{name}</h2>
        <button className="same-nb-v-icon-button" title="Close" onClick={props.onClose}>
          ×
        </button>
      </header>
      <div className="same-nb-v-side-body">
        <div className="same-nb-v-kv">
          <span>status</span>
          <span>{step ? <StatusBadge status={step.status} cached={step.cache_hit} /> : status === 'pending' ? <StatusBadge status="pending" /> : 'not in this run'}</span>
          {step ? (
            <>
              <span>compute</span>
              <span>{seconds(step.compute_s ?? step.duration_s) || (running ? 'running…' : '—')}</span>
              <span>kernel wait</span>
              <span>{seconds(step.kernel_wait_s) || '—'}</span>
              <StepResourceRows step={step} />
              <span>wall</span>
              <span>{seconds(step.duration_s) || '—'}</span>
              <span>cache</span>
              <span>{step.cache_hit ? 'hit (reused an earlier result)' : 'miss (computed)'}</span>
            </>
          ) : null}
          {spec ? (
            <>
              <span>cells</span>
              <span>{spec.cells.map(c => c.number).join(', ')}</span>
            </>
          ) : null}
        </div>
        {step?.reason ? <p className="same-nb-v-reason">{`why it ran: ${step.reason}`}</p> : null}
        {err ? (
          <div className="same-nb-v-error">
            <div className="same-nb-v-error-title">{`${err.ename ?? 'Error'}: ${err.evalue ?? ''}`}</div>
            {err.cell ? (
              <div className="same-nb-v-error-where">
                {`cell ${err.cell}${err.line ? `, line ${err.line}` : ''}`}
              </div>
            ) : null}
            {err.traceback ? (
              <details>
                <summary>traceback</summary>
                <pre className="same-nb-v-log">{err.traceback}</pre>
              </details>
            ) : null}
          </div>
        ) : null}
        <div className="same-nb-v-actions">
          <button
            className="jp-mod-styled same-nb-v-show"
            title="Show the step's cell in the notebook"
            onClick={() =>
              err && (err.cell_id || err.cell)
                ? context.showInNotebook(path, err.cell_id ?? null, err.cell ?? null, err.line ?? null)
                : context.showInNotebook(path, spec?.cells[0]?.id ?? null, spec?.cells[0]?.number ?? null, null)
            }
          >
            show in notebook
          </button>
          {run && step?.executed_notebook ? (
            <button
              className="jp-mod-styled same-nb-v-open-executed"
              onClick={() => context.openExecuted(path, run.id, name)}
            >
              open executed notebook
            </button>
          ) : null}
        </div>
        {spec ? (
          <div className="same-nb-v-io">
            <div>
              <b>in: </b>
              {spec.inputs.length
                ? spec.inputs.map(i => (i.producer ? `${i.name} ← ${i.producer}` : `${i.name} (${i.kind})`)).join(', ')
                : '—'}
            </div>
            <div>
              <b>out: </b>
              {spec.outputs.length ? spec.outputs.join(', ') : '—'}
            </div>
          </div>
        ) : null}
        {step && step.outputs.length ? (
          <table className="same-nb-v-mini">
            <tbody>
              {step.outputs.map(a => (
                <tr key={a.name}>
                  <td>{a.name}</td>
                  <td className="same-nb-v-mono" title={a.sha256}>
                    {short(a.sha256)}
                  </td>
                  <td className="same-nb-v-dim">{a.type ?? a.kind ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        {step && step.metrics.length ? (
          <div className="same-nb-v-io">
            <b>metrics: </b>
            {step.metrics.map(m => `${m.name} = ${valueText(m.value)}`).join(', ')}
          </div>
        ) : null}
        {step ? (
          <div className="same-nb-v-logbox">
            <div className="same-nb-v-logtitle">
              {running ? 'live output' : 'output'}
              {running && log?.cell ? ` — cell ${log.cell}` : ''}
              {running ? <span className="same-nb-v-live-dot" title="updates every second" /> : null}
            </div>
            {logError && !text ? <p className="same-nb-v-dim">{`no log: ${logError}`}</p> : null}
            <pre className="same-nb-v-log same-nb-v-steplog" ref={logRef}>
              {text || (running ? 'waiting for output…' : '(no output)')}
            </pre>
          </div>
        ) : null}
      </div>
    </aside>
  );
}

export function PipelineView(props: { args: IPipelineArgs; context: IViewContext }): JSX.Element {
  const { path } = props.args;
  const [inspection, setInspection] = React.useState<IInspection | null>(null);
  const [inspectError, setInspectError] = React.useState<string | null>(null);
  const [page, setPage] = React.useState<IRunPage | null>(null);
  const [runId, setRunId] = React.useState<number | null>(props.args.runId ?? null);
  const [follow, setFollow] = React.useState(props.args.runId === undefined);
  const [run, setRun] = React.useState<IRun | null>(null);
  const [runError, setRunError] = React.useState<string | null>(null);
  const [selected, setSelected] = React.useState<string | null>(null);

  React.useEffect(() => {
    if (props.args.runId !== undefined) {
      setRunId(props.args.runId);
      setFollow(false);
    }
  }, [props.args.runId, props.args]);

  const inspect = React.useCallback(async () => {
    try {
      setInspection(await api.inspect(path));
      setInspectError(null);
    } catch (error) {
      setInspectError(message(error));
    }
  }, [path]);
  React.useEffect(() => void inspect(), [inspect]);

  const latest = React.useRef<number | null>(null);
  usePoll(
    async () => {
      const p = await api.runs(path, 30, 0);
      setPage(p);
      const newest = p.latest_id ?? p.runs[0]?.id ?? null;
      if (latest.current !== null && newest !== latest.current) {
        void inspect(); // a new run: the notebook may have changed
      }
      latest.current = newest;
    },
    1500,
    [path]
  );
  const newest = page ? page.latest_id ?? page.runs[0]?.id ?? null : null;
  const shownId = follow ? newest : runId;

  const active = run ? ACTIVE.includes(run.status) : true;
  usePoll(
    async () => {
      if (shownId === null) {
        setRun(null);
        return;
      }
      try {
        const r = await api.run(path, shownId);
        setRun(r);
        setRunError(null);
      } catch (error) {
        setRunError(message(error));
      }
    },
    active ? 1000 : 5000,
    [path, shownId, active]
  );
  const shownRun = run && run.id === shownId ? run : null;

  const byName = new Map<string, IStepRun>();
  for (const s of shownRun?.steps ?? []) {
    byName.set(s.step_name, s);
  }

  // Nodes: the inspected steps (else the run's steps); edges: the inspection's, merged per pair.
  const names = inspection ? inspection.order : (shownRun?.steps ?? []).map(s => s.step_name);
  const merged = new Map<string, { source: string; target: string; names: string[]; kinds: Set<string> }>();
  for (const e of inspection?.pipeline.edges ?? []) {
    const key = `${e.src}\u0000${e.dst}`;
    const m = merged.get(key) ?? { source: e.src, target: e.dst, names: [], kinds: new Set<string>() };
    m.kinds.add(e.kind);
    for (const n of e.kind === 'after' ? ['after'] : e.names) {
      if (!m.names.includes(n)) {
        m.names.push(n);
      }
    }
    merged.set(key, m);
  }
  const edgeList = [...merged.values()].map((e, i) => {
    const full = e.names.join(', ');
    let [label, cut] = fit(full, EDGE_PX, EDGE_LABEL_MAX);
    if (cut) {
      // "a, b +3" reads better than a word cut in half
      const kept: string[] = [];
      for (const n of e.names) {
        const candidate = [...kept, n].join(', ') + ` +${e.names.length - kept.length - 1}`;
        if (textWidth(candidate, EDGE_PX) > EDGE_LABEL_MAX) {
          break;
        }
        kept.push(n);
      }
      label = kept.length ? `${kept.join(', ')} +${e.names.length - kept.length}` : label;
    }
    return { id: `e${i}`, ...e, full, label, cut, width: label ? textWidth(label, EDGE_PX) + 12 : 0 };
  });

  const structureKey = `${names.join('|')}#${edgeList.map(e => `${e.source}>${e.target}:${e.label}`).join('|')}`;
  const nodeSizes = React.useMemo(
    () =>
      names.map(n => {
        const w = textWidth(n, NAME_PX, 600) + 46;
        return { id: n, width: Math.min(MAX_W, Math.max(MIN_W, w)), height: NODE_H };
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [structureKey]
  );
  const laid = React.useMemo(
    () =>
      layoutGraph(
        nodeSizes,
        edgeList.map(e => ({
          id: e.id,
          source: e.source,
          target: e.target,
          labelWidth: e.width,
          labelHeight: e.label ? 20 : 0
        })),
        { rankdir: 'TB', nodesep: 36, ranksep: 44, edgesep: 20 }
      ),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [structureKey]
  );

  const counts: Record<string, number> = {};
  for (const n of names) {
    const st = stepStatus(shownRun, byName.get(n));
    counts[st] = (counts[st] ?? 0) + 1;
  }

  const runs = page?.runs ?? [];
  return (
    <div className="same-nb-v-root same-nb-v-pipeline">
      <div className="same-nb-v-toolbar">
        <span className="same-nb-v-title" title={path}>
          {path}
        </span>
        <label className="same-nb-v-field">
          run
          <select
            className="jp-mod-styled same-nb-v-run-picker"
            value={follow ? 'latest' : String(runId ?? '')}
            onChange={e => {
              if (e.target.value === 'latest') {
                setFollow(true);
              } else {
                setFollow(false);
                setRunId(Number(e.target.value));
              }
            }}
          >
            <option value="latest">{`latest${newest !== null ? ` (#${newest})` : ' (none yet)'}`}</option>
            {runs.map(r => (
              <option key={r.id} value={r.id}>
                {runLabel(r)}
              </option>
            ))}
            {runId !== null && !runs.some(r => r.id === runId) ? <option value={runId}>{`#${runId}`}</option> : null}
          </select>
        </label>
        {shownRun ? (
          <span className="same-nb-v-runinfo">
            <StatusBadge status={shownRun.status} />
            <span className="same-nb-v-dim">
              {` ${seconds(shownRun.duration_s)} `}
              {Object.entries(shownRun.params)
                .map(([k, v]) => `${k}=${valueText(v)}`)
                .join('  ')}
            </span>
          </span>
        ) : null}
        <span className="same-nb-v-spacer" />
        <button className="jp-mod-styled" title="Analyze the notebook again" onClick={() => void inspect()}>
          ↻ re-analyze
        </button>
      </div>
      {inspectError ? <p className="same-nb-v-error-line">{`Cannot analyze the notebook: ${inspectError}`}</p> : null}
      {runError ? <p className="same-nb-v-error-line">{runError}</p> : null}
      {shownRun?.error ? <p className="same-nb-v-error-line">{shownRun.error}</p> : null}
      <div className="same-nb-v-main">
        <div className="same-nb-v-graphcol">
          <div className="same-nb-v-summary">
            {Object.entries(counts).map(([st, n]) => (
              <span key={st} className={`same-nb-v-count same-nb-v-st-${st}`}>
                {`${n} ${st === 'notrun' ? 'not run' : st === 'none' ? 'steps' : st}`}
              </span>
            ))}
            <span className="same-nb-v-spacer" />
            <Legend />
          </div>
          {names.length ? (
            <ZoomCanvas
              width={laid.width}
              height={laid.height}
              minFontPx={SMALL_PX}
              fitKey={structureKey}
              align="top"
              ariaLabel="Pipeline steps"
              className="same-nb-v-dag"
              defs={<ArrowMarker id="same-nb-v-arrow-p" />}
              overview={names.flatMap(n => {
                const p = laid.nodes.get(n);
                return p
                  ? [{ id: n, x: p.x - p.width / 2, y: p.y - p.height / 2, w: p.width, h: p.height, className: `same-nb-v-st-${stepStatus(shownRun, byName.get(n))}` }]
                  : [];
              })}
            >
              <g className="same-nb-v-edges">
                {edgeList.map(e => {
                  const l = laid.edges.get(e.id);
                  if (!l) {
                    return null;
                  }
                  const after = e.kinds.has('after') && e.kinds.size === 1;
                  return (
                    <path
                      key={e.id}
                      className={`same-nb-v-edge ${after ? 'same-nb-v-edge-after' : ''}`}
                      d={edgePath(l.points)}
                      markerEnd="url(#same-nb-v-arrow-p)"
                      data-source={e.source}
                      data-target={e.target}
                    >
                      <title>{`${e.source} → ${e.target}: ${e.full}`}</title>
                    </path>
                  );
                })}
              </g>
              <g className="same-nb-v-nodes">
                {names.map(n => {
                  const p = laid.nodes.get(n);
                  if (!p) {
                    return null;
                  }
                  const step = byName.get(n);
                  const status = stepStatus(shownRun, step);
                  const [line1, line2] = nodeLines(status, step);
                  const [name, cut] = fit(n, NAME_PX, p.width - 40, 600);
                  const x = p.x - p.width / 2;
                  const y = p.y - p.height / 2;
                  return (
                    <g
                      key={n}
                      className={`same-nb-v-node same-nb-v-step same-nb-v-st-${status} ${selected === n ? 'same-nb-v-selected' : ''}`}
                      data-step={n}
                      data-status={status}
                      transform={`translate(${x},${y})`}
                      onClick={() => setSelected(selected === n ? null : n)}
                    >
                      <title>{`${n}: ${line1}${line2 ? ` (${line2.replace('kernel ', 'kernel wait ')})` : ''}${step?.reason ? `\n${step.reason}` : ''}\nclick for details and the live log`}</title>
                      <rect className="same-nb-v-box" width={p.width} height={p.height} rx={8} />
                      <rect className="same-nb-v-stripe" width={6} height={p.height} rx={3} />
                      <text className="same-nb-v-icon" x={16} y={24}>
                        {STATUS_ICON[status] ?? '•'}
                      </text>
                      <text className="same-nb-v-name" x={34} y={24} data-full={cut ? n : undefined}>
                        {name}
                      </text>
                      <text className="same-nb-v-line" x={16} y={43}>
                        {line1}
                      </text>
                      <text className="same-nb-v-line same-nb-v-line2" x={16} y={58}>
                        {fit(line2, SMALL_PX, p.width - 24)[0]}
                      </text>
                    </g>
                  );
                })}
              </g>
              <g className="same-nb-v-edge-labels">
                {edgeList.map(e => {
                  const l = laid.edges.get(e.id);
                  if (!l || !e.label || l.x === undefined || l.y === undefined) {
                    return null;
                  }
                  return (
                    <g key={e.id} className="same-nb-v-edge-label" transform={`translate(${l.x},${l.y})`}>
                      <title>{e.full}</title>
                      <rect x={-e.width / 2} y={-10} width={e.width} height={20} rx={4} />
                      <text textAnchor="middle" y={4}>
                        {e.label}
                      </text>
                    </g>
                  );
                })}
              </g>
            </ZoomCanvas>
          ) : (
            <p className="same-nb-v-empty">
              {inspection ? 'No steps: tag cells step:NAME to make a pipeline.' : inspectError ? '' : 'Analyzing…'}
            </p>
          )}
        </div>
        {selected ? (
          <StepPanel
            path={path}
            run={shownRun}
            name={selected}
            step={byName.get(selected)}
            inspection={inspection}
            context={props.context}
            onClose={() => setSelected(null)}
          />
        ) : null}
      </div>
    </div>
  );
}
