// The Runs view: every run of a notebook in a sortable, filterable table (name and note editable,
// one column per parameter and metric), run selection for comparison, and a metric chart.
import * as React from 'react';

import { ACTIVE, api, IRun } from '../api';
import { IChartPoint, MetricChart, XKind } from './chart';
import { message, PickCell, seconds, StatusBadge, usePoll, useSize, valueText, when } from './common';
import { DriftRunsButton } from './driftruns';

export interface IRunsActions {
  compare(runs: number[]): void;
  pipeline(runId: number): void;
  lineage(runId: number): void;
  sweep(sweepId: string): void;
}

type SortKey = string; // "id", "name", "status", "started", "duration", "note", "p:NAME", "m:NAME"

function Editable(props: {
  value: string | null;
  placeholder: string;
  className: string;
  onSave: (value: string | null) => Promise<void>;
}): JSX.Element {
  const [editing, setEditing] = React.useState(false);
  const [text, setText] = React.useState(props.value ?? '');
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const commit = async () => {
    const next = text.trim() || null;
    if (next === (props.value ?? null)) {
      setEditing(false);
      return;
    }
    setBusy(true);
    try {
      await props.onSave(next);
      setEditing(false);
      setError(null);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  if (editing) {
    return (
      <input
        className={`jp-mod-styled same-nb-v-edit ${props.className}`}
        autoFocus
        value={text}
        disabled={busy}
        title={error ?? 'Enter to save, Escape to cancel'}
        onClick={e => e.stopPropagation()}
        onChange={e => setText(e.target.value)}
        onBlur={() => void commit()}
        onKeyDown={e => {
          if (e.key === 'Enter') {
            void commit();
          } else if (e.key === 'Escape') {
            setText(props.value ?? '');
            setEditing(false);
          }
        }}
      />
    );
  }
  return (
    <span
      className={`same-nb-v-editable ${props.className} ${props.value ? '' : 'same-nb-v-placeholder'}`}
      title={error ?? 'Click to edit'}
      tabIndex={0}
      onClick={e => {
        e.stopPropagation();
        setText(props.value ?? '');
        setEditing(true);
      }}
      onKeyDown={e => {
        if (e.key === 'Enter') {
          setText(props.value ?? '');
          setEditing(true);
        }
      }}
    >
      {props.value || props.placeholder}
    </span>
  );
}

function sortValue(run: IRun, key: SortKey): number | string | null {
  if (key === 'id') {
    return run.id;
  }
  if (key === 'name') {
    return run.name ?? null;
  }
  if (key === 'note') {
    return run.note ?? null;
  }
  if (key === 'status') {
    return run.status;
  }
  if (key === 'sweep') {
    return run.sweep_id ?? null;
  }
  if (key === 'started') {
    return Date.parse(run.created_at);
  }
  if (key === 'duration') {
    return run.duration_s;
  }
  if (key.startsWith('p:')) {
    const v = run.params[key.slice(2)];
    return v === undefined || v === null ? null : typeof v === 'number' ? v : valueText(v);
  }
  if (key.startsWith('m:')) {
    const v = run.metrics?.[key.slice(2)];
    return v === undefined ? null : v;
  }
  return null;
}

function compareValues(a: number | string | null, b: number | string | null): number {
  if (a === null || a === undefined) {
    return b === null || b === undefined ? 0 : 1; // empty cells last
  }
  if (b === null || b === undefined) {
    return -1;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** A run's metrics ("step.metric" → value): the server's, else collected from the metrics API. */
function useMetrics(path: string, runs: IRun[]): Record<number, Record<string, number>> {
  const [fallback, setFallback] = React.useState<Record<number, Record<string, number>>>({});
  const missing = runs.length > 0 && runs.every(r => r.metrics === undefined);
  const newest = runs[0]?.id;
  React.useEffect(() => {
    if (!missing) {
      return;
    }
    void api
      .metrics(path, 200)
      .then(reply => {
        const out: Record<number, Record<string, number>> = {};
        for (const m of reply.metrics) {
          (out[m.run_id] = out[m.run_id] ?? {})[`${m.step_name}.${m.name}`] = m.value;
        }
        setFallback(out);
      })
      .catch(() => undefined);
  }, [path, missing, newest]);
  const out: Record<number, Record<string, number>> = {};
  for (const r of runs) {
    out[r.id] = r.metrics ?? fallback[r.id] ?? {};
  }
  return out;
}

function MetricsPanel(props: {
  runs: IRun[];
  metrics: Record<number, Record<string, number>>;
  params: string[];
  size: { w: number; h: number };
}): JSX.Element | null {
  const names = [...new Set(props.runs.flatMap(r => Object.keys(props.metrics[r.id] ?? {})))].sort();
  const [metric, setMetric] = React.useState<string>('');
  const [axis, setAxis] = React.useState<string>('');
  const chosen = names.includes(metric) ? metric : names[0];
  const size = props.size;
  const xs = ['time', ...props.params.map(p => `p:${p}`)];
  // Default x: the first parameter that varies across runs with this metric, else time.
  const withMetric = props.runs.filter(r => chosen && props.metrics[r.id]?.[chosen] !== undefined);
  const varies = props.params.find(p => new Set(withMetric.map(r => JSON.stringify(r.params[p]))).size > 1);
  const x = xs.includes(axis) ? axis : varies ? `p:${varies}` : 'time';
  if (!chosen) {
    return (
      <section className="same-nb-v-chartbox">
        <h3>Metrics</h3>
        <p className="same-nb-v-dim">
          No metrics yet: call <code>same_nb.log_metric("name", value)</code> in a step.
        </p>
      </section>
    );
  }
  let kind: XKind = 'time';
  const points: IChartPoint[] = [];
  const param = x.startsWith('p:') ? x.slice(2) : null;
  if (param) {
    const values = withMetric.map(r => r.params[param]);
    kind = values.every(v => typeof v === 'number') ? 'number' : 'category';
  }
  for (const r of withMetric) {
    const detail = Object.entries(r.params)
      .map(([k, v]) => `${k} = ${valueText(v)}`)
      .join(', ');
    const y = props.metrics[r.id][chosen];
    if (param) {
      const v = r.params[param];
      points.push({ run: r.id, x: kind === 'number' ? (v as number) : valueText(v), y, detail });
    } else {
      points.push({ run: r.id, x: Date.parse(r.created_at), y, detail: `${when(r.created_at)}${detail ? `; ${detail}` : ''}` });
    }
  }
  return (
    <section className="same-nb-v-chartbox">
      <div className="same-nb-v-chart-controls">
        <h3>Metric</h3>
        <select className="jp-mod-styled same-nb-v-metric-picker" value={chosen} onChange={e => setMetric(e.target.value)}>
          {names.map(n => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <span>against</span>
        <select className="jp-mod-styled same-nb-v-axis-picker" value={x} onChange={e => setAxis(e.target.value)}>
          <option value="time">run start time</option>
          {props.params.map(p => (
            <option key={p} value={`p:${p}`}>
              {`parameter ${p}`}
            </option>
          ))}
        </select>
        <span className="same-nb-v-dim">{`${points.length} run${points.length === 1 ? '' : 's'} · hover a point for its run`}</span>
      </div>
      <MetricChart
        points={points}
        xKind={kind}
        xLabel={param ? `${param} (parameter)` : 'run start time (local)'}
        yLabel={chosen}
        width={Math.max(560, Math.min(1200, size.w - 28))}
        height={Math.max(280, Math.min(420, size.h - 60))}
      />
    </section>
  );
}

export function RunsView(props: { path: string; actions: IRunsActions }): JSX.Element {
  const { path } = props;
  const [runs, setRuns] = React.useState<IRun[]>([]);
  const [total, setTotal] = React.useState(0);
  const [error, setError] = React.useState<string | null>(null);
  const [loaded, setLoaded] = React.useState(false);
  const [filter, setFilter] = React.useState('');
  const [sort, setSort] = React.useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'id', dir: -1 });
  const [picked, setPicked] = React.useState<number[]>([]);
  const chartBox = React.useRef<HTMLDivElement>(null);
  const chartSize = useSize(chartBox);

  const refresh = React.useCallback(async () => {
    try {
      const page = await api.runs(path, 500, 0);
      setRuns(page.runs);
      setTotal(page.total);
      setError(null);
    } catch (e) {
      setError(message(e));
    } finally {
      setLoaded(true);
    }
  }, [path]);
  usePoll(refresh, 1500, [refresh]);
  const metrics = useMetrics(path, runs);

  const params = [...new Set(runs.flatMap(r => Object.keys(r.params)))].sort();
  const swept = runs.some(r => r.sweep_id);
  const metricNames = [...new Set(runs.flatMap(r => Object.keys(metrics[r.id] ?? {})))].sort();
  const withMetrics = runs.map(r => ({ ...r, metrics: metrics[r.id] }));

  const needle = filter.trim().toLowerCase();
  const shown = withMetrics
    .filter(r => {
      if (!needle) {
        return true;
      }
      const hay = [
        `#${r.id}`,
        r.name ?? '',
        r.note ?? '',
        r.status,
        r.sweep_id ?? '',
        ...Object.entries(r.params).map(([k, v]) => `${k}=${valueText(v)}`)
      ]
        .join(' ')
        .toLowerCase();
      return needle.split(/\s+/).every(w => hay.includes(w));
    })
    .sort((a, b) => {
      const c = compareValues(sortValue(a, sort.key), sortValue(b, sort.key));
      return c === 0 ? b.id - a.id : c * sort.dir;
    });

  const header = (key: SortKey, label: string, title?: string, className = '') => (
    <th
      key={key}
      className={`same-nb-v-sortable ${className} ${sort.key === key ? 'same-nb-v-sorted' : ''}`}
      title={title ?? `Sort by ${label}`}
      aria-sort={sort.key === key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}
      onClick={() => setSort(s => ({ key, dir: s.key === key ? (-s.dir as 1 | -1) : key === 'id' || key === 'started' ? -1 : 1 }))}
    >
      {label}
      <span className="same-nb-v-sort-arrow">{sort.key === key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</span>
    </th>
  );

  const save = (id: number, label: { name?: string | null; note?: string | null }) => async () => {
    const updated = await api.label(path, id, label);
    setRuns(rs => rs.map(r => (r.id === id ? { ...r, ...label, ...(updated && updated.id === id ? updated : {}) } : r)));
  };

  const toggle = (id: number) =>
    setPicked(p => (p.includes(id) ? p.filter(x => x !== id) : [...p, id]));
  const ordered = [...picked].filter(id => runs.some(r => r.id === id)).sort((a, b) => a - b);

  return (
    <div className="same-nb-v-root same-nb-v-runs">
      <div className="same-nb-v-toolbar">
        <span className="same-nb-v-title" title={path}>
          {path}
        </span>
        <span className="same-nb-v-dim">{`${total} run${total === 1 ? '' : 's'}`}</span>
        <input
          className="jp-mod-styled same-nb-v-filter"
          type="search"
          placeholder="Filter: name, note, status, lr=0.1 …"
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
        <span className="same-nb-v-spacer" />
        <span className="same-nb-v-dim">{ordered.length ? `selected ${ordered.map(i => `#${i}`).join(', ')}` : 'tick 2+ runs to compare'}</span>
        <button
          className="jp-mod-styled jp-mod-accept same-nb-v-compare-button"
          disabled={ordered.length < 2}
          onClick={() => props.actions.compare(ordered)}
        >
          {`Compare${ordered.length >= 2 ? ` (${ordered.length})` : ''}`}
        </button>
        {ordered.length ? (
          <button className="jp-mod-styled" onClick={() => setPicked([])}>
            clear
          </button>
        ) : null}
        <DriftRunsButton path={path} onCompare={props.actions.compare} />
      </div>
      {error ? <p className="same-nb-v-error-line">{error}</p> : null}
      <div className="same-nb-v-tablebox">
        <table className="same-nb-v-table">
          <thead>
            <tr>
              <th className="same-nb-v-check" title="Select for comparison" />
              {header('id', '#', 'Run number')}
              {header('name', 'name')}
              {header('note', 'note')}
              {header('status', 'status')}
              {header('started', 'started')}
              {header('duration', 'duration')}
              {swept ? header('sweep', 'sweep', 'The sweep a run belongs to: click to open its table') : null}
              {params.map(p => header(`p:${p}`, p, `parameter ${p}`, 'same-nb-v-param-col'))}
              {metricNames.map(m => header(`m:${m}`, m, `metric ${m} (step.metric)`, 'same-nb-v-metric-col'))}
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map(r => (
              <tr
                key={r.id}
                data-run-id={r.id}
                className={`${picked.includes(r.id) ? 'same-nb-v-picked' : ''} ${ACTIVE.includes(r.status) ? 'same-nb-v-active' : ''}`}
                onClick={() => toggle(r.id)}
              >
                <PickCell run={r.id} picked={picked.includes(r.id)} onToggle={toggle} />
                <td className="same-nb-v-num">{`#${r.id}`}</td>
                <td>
                  <Editable value={r.name} placeholder="add a name" className="same-nb-v-name-edit" onSave={v => save(r.id, { name: v })()} />
                </td>
                <td className="same-nb-v-note">
                  <Editable value={r.note} placeholder="add a note" className="same-nb-v-note-edit" onSave={v => save(r.id, { note: v })()} />
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td className="same-nb-v-dim" title={r.created_at}>
                  {when(r.created_at)}
                </td>
                <td className="same-nb-v-num">{seconds(r.duration_s)}</td>
                {swept ? (
                  <td className="same-nb-v-sweep-cell" onClick={e => e.stopPropagation()}>
                    {r.sweep_id ? (
                      <button
                        className="same-nb-v-linkbutton same-nb-v-open-sweep"
                        title={`Open sweep ${r.sweep_id}: its runs side by side`}
                        onClick={() => props.actions.sweep(r.sweep_id as string)}
                      >
                        {r.sweep_id}
                      </button>
                    ) : null}
                  </td>
                ) : null}
                {params.map(p => (
                  <td key={p} className="same-nb-v-num same-nb-v-param-cell" data-param={p}>
                    {r.params[p] === undefined ? '' : valueText(r.params[p])}
                  </td>
                ))}
                {metricNames.map(m => (
                  <td key={m} className="same-nb-v-num same-nb-v-metric-cell" data-metric={m}>
                    {r.metrics?.[m] === undefined ? '' : valueText(r.metrics[m])}
                  </td>
                ))}
                <td className="same-nb-v-rowactions" onClick={e => e.stopPropagation()}>
                  <button className="same-nb-v-linkbutton" title="The step graph of this run" onClick={() => props.actions.pipeline(r.id)}>
                    graph
                  </button>
                  <button className="same-nb-v-linkbutton" title="What this run read and wrote" onClick={() => props.actions.lineage(r.id)}>
                    lineage
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {loaded && !shown.length ? (
          <p className="same-nb-v-empty">{runs.length ? 'No run matches the filter.' : 'No runs yet: run the notebook as a pipeline.'}</p>
        ) : null}
      </div>
      <div className="same-nb-v-chartwrap" ref={chartBox}>
        <MetricsPanel runs={withMetrics} metrics={metrics} params={params} size={chartSize} />
      </div>
    </div>
  );
}
