// The Compare view: two or more runs side by side (as MLflow's run comparison): parameters, metrics,
// resources (resources.tsx), data drift (drift.tsx), code, packages, inputs, outputs and step status.
// Rows that differ are highlighted; a section with no differences collapses to one line.
import * as React from 'react';

import { api, ICompare, IRun } from '../api';
import { message, RunHeads, seconds, short, StatusBadge, usePoll, valueText, when } from './common';
import { DriftSection } from './drift';
import { ResourcesSection } from './resources';

interface IRow {
  key: string;
  label: string;
  values: unknown[];
  hash?: boolean; // show short hashes
  delta?: boolean; // numbers: show the difference to the base run
}

function same(values: unknown[]): boolean {
  const first = JSON.stringify(values[0] ?? null);
  return values.every(v => JSON.stringify(v ?? null) === first);
}

function Cell(props: { value: unknown; base: unknown; hash?: boolean; delta?: boolean; differs: boolean }): JSX.Element {
  const { value, base, hash } = props;
  let text = hash ? (typeof value === 'string' ? short(value, 12) : value === null || value === undefined ? '—' : valueText(value)) : valueText(value);
  let delta = '';
  if (props.delta && typeof value === 'number' && typeof base === 'number' && value !== base) {
    const d = value - base;
    delta = ` (${d > 0 ? '+' : ''}${valueText(Number(d.toPrecision(4)))})`;
  }
  if (value === null || value === undefined) {
    text = '—';
  }
  const changed = props.differs && JSON.stringify(value ?? null) !== JSON.stringify(base ?? null);
  return (
    <td
      className={`${hash ? 'same-nb-v-mono' : 'same-nb-v-num'} ${changed ? 'same-nb-v-changed' : ''}`}
      title={typeof value === 'string' && hash ? value : valueText(value)}
    >
      {text}
      {delta ? <span className="same-nb-v-delta">{delta}</span> : null}
    </td>
  );
}

function Section(props: {
  id: string;
  title: string;
  rows: IRow[];
  runs: number[];
  empty?: string;
  note?: string;
}): JSX.Element {
  const differing = props.rows.filter(r => !same(r.values));
  const identical = props.rows.filter(r => same(r.values));
  const [open, setOpen] = React.useState(false);
  const table = (rows: IRow[], differs: boolean) => (
    <table className="same-nb-v-table same-nb-v-compare-table">
      <thead>
        <tr>
          <th />
          <RunHeads runs={props.runs} />
        </tr>
      </thead>
      <tbody>
        {rows.map(r => (
          <tr key={r.key} className={differs ? 'same-nb-v-differs' : 'same-nb-v-same'} data-key={r.key}>
            <th className="same-nb-v-rowhead" title={r.label}>
              {r.label}
            </th>
            {r.values.map((v, i) => (
              <Cell key={i} value={v} base={r.values[0]} hash={r.hash} delta={r.delta} differs={differs} />
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
  return (
    <section className={`same-nb-v-cmp-section ${differing.length ? 'same-nb-v-has-diff' : 'same-nb-v-no-diff'}`} data-section={props.id}>
      <h3>
        {props.title}
        <span className="same-nb-v-cmp-count">
          {differing.length
              ? ` — ${differing.length} of ${props.rows.length} differ`
              : ' — no differences'}
        </span>
      </h3>
      {props.note ? <p className="same-nb-v-dim">{props.note}</p> : null}
      {differing.length ? table(differing, true) : null}
      {identical.length ? (
        <details open={open} onToggle={e => setOpen((e.target as HTMLDetailsElement).open)}>
          <summary className="same-nb-v-dim">{`${identical.length} identical`}</summary>
          {open ? table(identical, false) : null}
        </details>
      ) : null}
    </section>
  );
}

export function CompareView(props: { path: string; runs: number[]; onOpenRun: (id: number) => void }): JSX.Element {
  const { path } = props;
  const ids = props.runs;
  const [cmp, setCmp] = React.useState<ICompare | null>(null);
  const [details, setDetails] = React.useState<Record<number, IRun>>({});
  const [error, setError] = React.useState<string | null>(null);
  const key = ids.join(',');
  const running = Object.values(details).some(r => ['pending', 'running'].includes(r.status));
  usePoll(
    async () => {
      try {
        const [c, ...rs] = await Promise.all([api.compare(path, ids), ...ids.map(id => api.run(path, id))]);
        setCmp(c);
        setDetails(Object.fromEntries(rs.map(r => [r.id, r])));
        setError(null);
      } catch (e) {
        setError(message(e));
      }
    },
    running ? 2000 : 600000,
    [path, key, running]
  );
  const order = cmp?.runs ?? ids;
  const runs = order.map(id => details[id]);

  const sections: { id: string; title: string; rows: IRow[]; empty?: string; note?: string }[] = [];
  if (cmp) {
    // Parameters: every parameter of the runs (the API sends only those that differ).
    const names = [...new Set([...Object.keys(cmp.params), ...runs.flatMap(r => (r ? Object.keys(r.params) : []))])].sort();
    sections.push({
      id: 'params',
      title: 'Parameters',
      rows: names.map(n => ({
        key: n,
        label: n,
        values: n in cmp.params ? cmp.params[n] : runs.map(r => r?.params[n])
      }))
    });
    const steps = Object.keys(cmp.steps).sort();
    const metricRows: IRow[] = [];
    const codeRows: IRow[] = [{ key: 'notebook', label: 'notebook (sha256)', values: cmp.notebook_sha256, hash: true }];
    const inputRows: IRow[] = [];
    const outputRows: IRow[] = [];
    const statusRows: IRow[] = [];
    for (const s of steps) {
      const st = cmp.steps[s];
      statusRows.push({ key: s, label: s, values: st.status });
      const cells = Object.keys(st.code).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
      for (const c of cells) {
        codeRows.push({ key: `${s}/${c}`, label: `${s} · ${/^\d+$/.test(c) ? `cell ${c}` : c}`, values: st.code[c], hash: true });
      }
      for (const [n, v] of Object.entries(st.inputs)) {
        inputRows.push({ key: `${s}/${n}`, label: `${s} ← ${n}`, values: v, hash: true });
      }
      for (const [n, v] of Object.entries(st.outputs)) {
        outputRows.push({ key: `${s}/${n}`, label: `${s} → ${n}`, values: v, hash: true });
      }
      for (const [n, v] of Object.entries(st.metrics)) {
        metricRows.push({ key: `${s}.${n}`, label: `${s}.${n}`, values: v, delta: true });
      }
    }
    sections.push({ id: 'metrics', title: 'Metrics', rows: metricRows, empty: 'no metrics logged' });
    sections.push({ id: 'code', title: 'Code', rows: codeRows, note: 'sha256 of each step cell\'s normalized source' });
    sections.push({ id: 'packages', title: 'Packages', rows: Object.entries(cmp.packages).map(([n, v]) => ({ key: n, label: n, values: v })), empty: 'no packages recorded' });
    sections.push({ id: 'inputs', title: 'Input hashes', rows: inputRows, empty: 'no inputs' });
    sections.push({ id: 'outputs', title: 'Outputs', rows: outputRows, empty: 'no outputs' });
    sections.push({ id: 'steps', title: 'Step status', rows: statusRows });
  }

  return (
    <div className="same-nb-v-root same-nb-v-compare">
      <div className="same-nb-v-toolbar">
        <span className="same-nb-v-title" title={path}>
          {`Compare ${order.map(i => `#${i}`).join(' · ')} — ${path}`}
        </span>
        <span className="same-nb-v-spacer" />
        {cmp ? (
          <span className={cmp.identical ? 'same-nb-v-ok' : 'same-nb-v-warn'}>
            {cmp.identical ? 'identical runs' : 'the runs differ'}
          </span>
        ) : null}
      </div>
      {error ? <p className="same-nb-v-error-line">{`Cannot compare: ${error}`}</p> : null}
      {!cmp && !error ? <p className="same-nb-v-empty">Comparing…</p> : null}
      <div className="same-nb-v-scroll">
        {cmp ? (
          <table className="same-nb-v-table same-nb-v-compare-head">
            <thead>
              <tr>
                <th />
                {order.map((id, i) => (
                  <th key={id} className="same-nb-v-num">
                    <button className="same-nb-v-linkbutton" title="Open the step graph of this run" onClick={() => props.onOpenRun(id)}>
                      {`#${id}`}
                    </button>
                    {i === 0 ? <span className="same-nb-v-dim"> (base)</span> : null}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              <tr>
                <th className="same-nb-v-rowhead">name</th>
                {runs.map((r, i) => (
                  <td key={i}>{r?.name ?? ''}</td>
                ))}
              </tr>
              <tr>
                <th className="same-nb-v-rowhead">status</th>
                {runs.map((r, i) => (
                  <td key={i}>{r ? <StatusBadge status={r.status} /> : ''}</td>
                ))}
              </tr>
              <tr>
                <th className="same-nb-v-rowhead">started</th>
                {runs.map((r, i) => (
                  <td key={i} className="same-nb-v-dim">
                    {r ? when(r.created_at) : ''}
                  </td>
                ))}
              </tr>
              <tr>
                <th className="same-nb-v-rowhead">duration</th>
                {runs.map((r, i) => (
                  <td key={i} className="same-nb-v-num">
                    {r ? seconds(r.duration_s) : ''}
                  </td>
                ))}
              </tr>
              <tr>
                <th className="same-nb-v-rowhead">note</th>
                {runs.map((r, i) => (
                  <td key={i} className="same-nb-v-dim">
                    {r?.note ?? ''}
                  </td>
                ))}
              </tr>
            </tbody>
          </table>
        ) : null}
        {sections.map(s => (
          <React.Fragment key={s.id}>
            <Section id={s.id} title={s.title} rows={s.rows} runs={order} empty={s.empty} note={s.note} />
            {s.id === 'metrics' && cmp ? (
              <>
                <ResourcesSection cmp={cmp} runs={order} />
                <DriftSection cmp={cmp} />
              </>
            ) : null}
          </React.Fragment>
        ))}
      </div>
    </div>
  );
}
