// The Sweep view: one sweep's runs as a table (swept values, metrics, status, time) with the best run
// marked by a chosen metric, and that metric charted against a swept parameter. It follows the sweep
// live: runs appear as they start.
import * as React from 'react';

import { ACTIVE, ApiError } from '../api';
import { ISweepTable, sweepApi } from '../sweeps';
import { IChartPoint, MetricChart, XKind } from './chart';
import { message, PickCell, seconds, StatusBadge, usePoll, useSize, valueText } from './common';

export interface ISweepArgs {
  path: string;
  sweepId: string;
  expected?: number; // how many runs the grid starts, when the view opens with the sweep
  at?: number;
}

export interface ISweepActions {
  compare(runs: number[]): void;
  pipeline(runId: number): void;
}

type Direction = '' | 'min' | 'max'; // '' lets the server choose from the metric's name

const WAIT_FOR_FIRST_RUN_MS = 90_000;

function useSweep(args: ISweepArgs, metric: string, direction: Direction) {
  const [table, setTable] = React.useState<ISweepTable | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const opened = React.useRef(Date.now());
  // Done once no run is active and every planned run is there, or the sweep process has ended (a
  // cancelled sweep or a failed shared step leaves points that never start).
  const planned = table?.process?.runs ?? args.expected ?? 0;
  const done =
    !!table &&
    !table.runs.some(r => ACTIVE.includes(r.status)) &&
    (table.runs.length >= planned || table.process?.running === false);
  const refresh = React.useCallback(async () => {
    try {
      let next: ISweepTable;
      try {
        next = await sweepApi.table(args.path, args.sweepId, metric, direction);
      } catch (e) {
        // A metric no run logged (yet): show the table without a best run rather than nothing.
        if (metric && e instanceof ApiError && e.status === 400) {
          next = await sweepApi.table(args.path, args.sweepId);
        } else {
          throw e;
        }
      }
      setTable(next);
      setError(null);
    } catch (e) {
      const starting = e instanceof ApiError && e.status === 404 && Date.now() - opened.current < WAIT_FOR_FIRST_RUN_MS;
      setError(starting ? null : message(e));
    }
  }, [args.path, args.sweepId, metric, direction]);
  usePoll(refresh, 1500, [refresh], !done);
  // One last read after the sweep finished, so a metric switch still refreshes the best run.
  React.useEffect(() => {
    if (done) {
      void refresh();
    }
  }, [done, refresh]);
  return { table, error, done, refresh };
}

function CancelSweep(props: { args: ISweepArgs; running: boolean; onDone: () => void }): JSX.Element {
  const [busy, setBusy] = React.useState(false);
  const [reply, setReply] = React.useState<{ text: string; error: boolean } | null>(null);
  const cancel = async () => {
    setBusy(true);
    try {
      const r = await sweepApi.cancel(props.args.path, props.args.sweepId);
      setReply({ text: r.message, error: !r.stopped });
    } catch (e) {
      setReply({ text: message(e), error: true });
    } finally {
      setBusy(false);
      props.onDone();
    }
  };
  return (
    <>
      {props.running || busy ? (
        <button
          className="jp-mod-styled jp-mod-warn same-nb-v-sweep-cancel"
          disabled={busy}
          title="Stop every run of this sweep (SIGINT; the runs record themselves cancelled)"
          onClick={() => void cancel()}
        >
          {busy ? 'Cancelling…' : 'Cancel sweep'}
        </button>
      ) : null}
      {reply ? (
        <span className={`same-nb-v-sweep-cancel-reply ${reply.error ? 'same-nb-v-error-line' : 'same-nb-v-dim'}`} role="status">
          {reply.text}
        </span>
      ) : null}
    </>
  );
}

function SweepChart(props: { table: ISweepTable; metric: string; width: number }): JSX.Element | null {
  const { table, metric } = props;
  const [axis, setAxis] = React.useState('');
  const x = table.params.includes(axis) ? axis : table.params[0];
  const withMetric = table.runs.filter(r => r.metrics[metric] !== undefined);
  if (!x || !withMetric.length) {
    return null;
  }
  const kind: XKind = withMetric.every(r => typeof r.values[x] === 'number') ? 'number' : 'category';
  // A second swept parameter becomes the series: one coloured line per value (more would not read).
  const others = table.params.filter(p => p !== x);
  const by = others.length === 1 ? others[0] : null;
  const points: IChartPoint[] = withMetric.map(r => ({
    run: r.id,
    x: kind === 'number' ? (r.values[x] as number) : valueText(r.values[x]),
    y: r.metrics[metric],
    series: by ? valueText(r.values[by]) : undefined,
    detail: Object.entries(r.values)
      .map(([k, v]) => `${k} = ${valueText(v)}`)
      .join(', ')
  }));
  return (
    <section className="same-nb-v-chartbox same-nb-v-sweep-chart">
      <div className="same-nb-v-chart-controls">
        <h3>{metric}</h3>
        <span>against</span>
        <select className="jp-mod-styled same-nb-v-sweep-axis" value={x} onChange={e => setAxis(e.target.value)}>
          {table.params.map(p => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
        <span className="same-nb-v-dim">hover a point for its run and values</span>
      </div>
      <MetricChart
        points={points}
        xKind={kind}
        xLabel={`${x} (swept)`}
        yLabel={metric}
        seriesLabel={by ?? undefined}
        width={Math.max(520, Math.min(1100, props.width - 28))}
        height={300}
      />
    </section>
  );
}

export function SweepView(props: { args: ISweepArgs; actions: ISweepActions }): JSX.Element {
  const { args } = props;
  const [metric, setMetric] = React.useState('');
  const [direction, setDirection] = React.useState<Direction>('');
  const [picked, setPicked] = React.useState<number[]>([]);
  const { table, error, done, refresh } = useSweep(args, metric, direction);
  const box = React.useRef<HTMLDivElement>(null);
  const size = useSize(box);
  const columns = table?.columns ?? [];
  const chosen = columns.includes(metric) ? metric : columns[0] ?? '';
  React.useEffect(() => {
    if (!metric && chosen) {
      setMetric(chosen);
    }
  }, [metric, chosen]);
  const runs = table?.runs ?? [];
  const counts: Record<string, number> = {};
  for (const r of runs) {
    counts[r.status] = (counts[r.status] ?? 0) + 1;
  }
  const expected = Math.max(table?.process?.runs ?? args.expected ?? 0, runs.length);
  const best = table?.best && table.best.metric === chosen ? table.best : null;
  const toggle = (id: number) => setPicked(p => (p.includes(id) ? p.filter(x => x !== id) : [...p, id]));
  const ordered = picked.filter(id => runs.some(r => r.id === id)).sort((a, b) => a - b);
  return (
    <div className="same-nb-v-root same-nb-v-sweep" data-sweep-id={args.sweepId} ref={box}>
      <div className="same-nb-v-toolbar">
        <span className="same-nb-v-title" title={args.path}>
          {`Sweep ${args.sweepId}`}
        </span>
        <span className="same-nb-v-dim same-nb-v-sweep-progress">
          {`${runs.length}${expected > runs.length ? ` of ${expected}` : ''} run${expected === 1 ? '' : 's'}`}
          {Object.keys(counts).length ? ` · ${Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ')}` : ''}
          {done ? '' : ' · following'}
        </span>
        {table?.process ? (
          <CancelSweep args={args} running={!done && table.process.running} onDone={() => void refresh()} />
        ) : null}
        <span className="same-nb-v-spacer" />
        {columns.length ? (
          <>
            <span>best by</span>
            <select
              className="jp-mod-styled same-nb-v-sweep-metric"
              value={chosen}
              onChange={e => setMetric(e.target.value)}
            >
              {columns.map(c => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
            <select
              className="jp-mod-styled same-nb-v-sweep-direction"
              value={direction}
              title="Whether a higher or a lower value is better (auto: lower for loss, error, time…)"
              onChange={e => setDirection(e.target.value as Direction)}
            >
              <option value="">auto</option>
              <option value="max">highest</option>
              <option value="min">lowest</option>
            </select>
          </>
        ) : null}
        <button
          className="jp-mod-styled jp-mod-accept same-nb-v-compare-button"
          disabled={ordered.length < 2}
          title="Tick two or more runs to compare them"
          onClick={() => props.actions.compare(ordered)}
        >
          {`Compare${ordered.length >= 2 ? ` (${ordered.length})` : ''}`}
        </button>
      </div>
      {error ? <p className="same-nb-v-error-line">{error}</p> : null}
      {best ? (
        <p className="same-nb-v-sweep-best">
          {`Best: run #${best.run_id}, ${best.metric} = ${valueText(best.value)} (${best.direction === 'max' ? 'highest' : 'lowest'})`}
        </p>
      ) : null}
      <div className="same-nb-v-tablebox">
        <table className="same-nb-v-table same-nb-v-sweep-table">
          <thead>
            <tr>
              <th className="same-nb-v-check" title="Select for comparison" />
              <th>#</th>
              <th>status</th>
              {(table?.params ?? []).map(p => (
                <th key={p} className="same-nb-v-param-col" title={`swept parameter ${p}`}>
                  {p}
                </th>
              ))}
              {columns.map(c => (
                <th key={c} className="same-nb-v-metric-col" title={`metric ${c}`}>
                  {c}
                </th>
              ))}
              <th>time</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {runs.map(r => (
              <tr
                key={r.id}
                data-run-id={r.id}
                className={`${best?.run_id === r.id ? 'same-nb-v-best' : ''} ${picked.includes(r.id) ? 'same-nb-v-picked' : ''}`}
                onClick={() => toggle(r.id)}
              >
                <PickCell run={r.id} picked={picked.includes(r.id)} onToggle={toggle} />
                <td className="same-nb-v-num">
                  {best?.run_id === r.id ? <span className="same-nb-v-best-mark" title={`best by ${chosen}`}>★ </span> : null}
                  {`#${r.id}`}
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                {(table?.params ?? []).map(p => (
                  <td key={p} className="same-nb-v-num same-nb-v-param-cell" data-param={p}>
                    {valueText(r.values[p])}
                  </td>
                ))}
                {columns.map(c => (
                  <td
                    key={c}
                    className={`same-nb-v-num same-nb-v-metric-cell ${best?.run_id === r.id && c === chosen ? 'same-nb-v-best-cell' : ''}`}
                    data-metric={c}
                  >
                    {r.metrics[c] === undefined ? '' : valueText(r.metrics[c])}
                  </td>
                ))}
                <td className="same-nb-v-num">{seconds(r.duration_s)}</td>
                <td className="same-nb-v-rowactions" onClick={e => e.stopPropagation()}>
                  <button className="same-nb-v-linkbutton" title="The step graph of this run" onClick={() => props.actions.pipeline(r.id)}>
                    graph
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!runs.length && !error ? <p className="same-nb-v-empty">Starting the sweep…</p> : null}
      </div>
      {table && chosen ? <SweepChart table={table} metric={chosen} width={size.w} /> : null}
    </div>
  );
}
