// The Compare view's "Data drift" section: per DataFrame/Series/array a step passes on in both runs,
// schema changes and per-column PSI (and KS) against the base run, worded as `same-nb compare` prints
// them (same_nb/store/drift_report.py); identical artifacts collapse to one line.
import * as React from 'react';

import { IArtifactDrift, IColumnDrift, ICompare, IDrift, ISchemaChange } from '../api';
import { valueText } from './common';

// store/drift.py's readings: below 0.1 stable, 0.1–0.25 moderate, above 0.25 significant.
export const PSI_MODERATE = 0.1;
export const PSI_SIGNIFICANT = 0.25;

export const PSI_EXPLAINED =
  "PSI (population stability index) of each column against the base run, over the base run's deciles " +
  '(top categories for other columns): <0.1 stable, 0.1–0.25 moderate, >0.25 significant. ' +
  'KS: the largest gap between the two distributions (numeric columns).';

// Columns past this many show the stable ones folded, so a wide frame does not bury what drifted.
const FOLD_STABLE_OVER = 20;

export function psiReading(psi: number | null | undefined): string {
  if (psi === null || psi === undefined) {
    return 'n/a';
  }
  return psi < PSI_MODERATE ? 'stable' : psi < PSI_SIGNIFICANT ? 'moderate' : 'significant';
}

/** A number as the terminal shows it: four significant digits. */
export function num(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '—';
  }
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

export function schemaText(change: ISchemaChange): string {
  const col = `'${change.column ?? ''}'`;
  switch (change.change) {
    case 'added':
      return `column ${col} added (${valueText(change.to)})`;
    case 'removed':
      return `column ${col} removed (was ${valueText(change.from)})`;
    case 'dtype':
      return `column ${col} dtype ${valueText(change.from)} → ${valueText(change.to)}`;
    case 'kind':
      return `value kind ${valueText(change.from)} → ${valueText(change.to)}`;
    default:
      return `columns ${valueText(change.from)} → ${valueText(change.to)}`;
  }
}

function ColumnRow(props: { column: IColumnDrift }): JSX.Element {
  const c = props.column;
  const reading = psiReading(c.psi);
  const over = c.psi !== null && c.psi !== undefined && c.psi >= PSI_MODERATE;
  const mean = c.mean && c.mean[0] !== null && c.mean[1] !== null ? `${num(c.mean[0])} → ${num(c.mean[1])}` : '';
  return (
    <tr
      className={`same-nb-v-drift-col same-nb-v-drift-${reading.replace('/', '')} ${over ? 'same-nb-v-drift-over' : ''}`}
      data-column={c.name}
      data-psi={c.psi ?? ''}
    >
      <th className="same-nb-v-rowhead" title={c.name}>
        {c.name}
      </th>
      <td className="same-nb-v-dim">{c.dtype}</td>
      <td
        className="same-nb-v-num same-nb-v-drift-psi"
        title={over ? `PSI ${num(c.psi)} is at or above the ${PSI_MODERATE} threshold: a ${reading} shift` : `PSI ${num(c.psi)}: ${reading}`}
      >
        {num(c.psi)}
      </td>
      <td className="same-nb-v-drift-reading">{reading}</td>
      <td className="same-nb-v-num">{c.ks === null || c.ks === undefined ? '' : num(c.ks)}</td>
      <td className="same-nb-v-num same-nb-v-dim">{mean}</td>
    </tr>
  );
}

function ArtifactDrift(props: { art: IArtifactDrift }): JSX.Element {
  const { art } = props;
  const columns = [...art.columns].sort((a, b) => (b.psi ?? -1) - (a.psi ?? -1));
  const fold = columns.length > FOLD_STABLE_OVER;
  const loud = fold ? columns.filter(c => psiReading(c.psi) !== 'stable') : columns;
  const quiet = fold ? columns.filter(c => psiReading(c.psi) === 'stable') : [];
  const rows = art.rows;
  const head = (
    <tr>
      <th>column</th>
      <th>dtype</th>
      <th className="same-nb-v-num">PSI</th>
      <th />
      <th className="same-nb-v-num">KS</th>
      <th className="same-nb-v-num">mean (base → run)</th>
    </tr>
  );
  return (
    <div className="same-nb-v-drift-art" data-artifact={`${art.step}.${art.variable}`}>
      <div className="same-nb-v-drift-arthead">
        <span className="same-nb-v-mono">{`${art.step}.${art.variable}`}</span>
        {rows && rows[0] !== rows[1] ? <span className="same-nb-v-dim">{` rows ${num(rows[0])} → ${num(rows[1])}`}</span> : null}
        {art.sampled ? <span className="same-nb-v-dim"> (statistics from a sample)</span> : null}
      </div>
      {art.schema.length ? (
        <ul className="same-nb-v-drift-schema">
          {art.schema.map((s, i) => (
            <li key={i} data-change={s.change}>
              {`schema: ${schemaText(s)}`}
            </li>
          ))}
        </ul>
      ) : null}
      {columns.length ? (
        <table className="same-nb-v-table same-nb-v-drift-table">
          <thead>{head}</thead>
          <tbody>
            {loud.map(c => (
              <ColumnRow key={c.name} column={c} />
            ))}
          </tbody>
        </table>
      ) : null}
      {quiet.length ? (
        <details>
          <summary className="same-nb-v-dim">{`${quiet.length} column(s) stable`}</summary>
          <table className="same-nb-v-table same-nb-v-drift-table">
            <tbody>
              {quiet.map(c => (
                <ColumnRow key={c.name} column={c} />
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
    </div>
  );
}

function OneDrift(props: { drift: IDrift; many: boolean }): JSX.Element {
  const { drift } = props;
  const changed = drift.artifacts.filter(a => !a.identical);
  const same = drift.artifacts.filter(a => a.identical);
  return (
    <div className="same-nb-v-drift-run" data-run={drift.run}>
      {props.many ? <h4>{`run #${drift.baseline} → run #${drift.run}`}</h4> : null}
      {!drift.artifacts.length && !drift.unprofiled.length ? (
        <p className="same-nb-v-dim">No DataFrame, Series or array output in both runs.</p>
      ) : null}
      {changed.map(a => (
        <ArtifactDrift key={`${a.step}.${a.variable}`} art={a} />
      ))}
      {same.length ? (
        <p className="same-nb-v-dim same-nb-v-drift-identical" title={same.map(a => `${a.step}.${a.variable}`).join('\n')}>
          {`${same.length} profiled output(s) identical: ${same.map(a => `${a.step}.${a.variable}`).join(', ')}`}
        </p>
      ) : null}
      {drift.unprofiled.map((u, i) => (
        <p key={i} className="same-nb-v-dim same-nb-v-drift-unprofiled">
          {`${u.step}.${u.variable}: no profile in run #${u.run} (saved before profiles existed, or with SAME_NB_PROFILE=0)`}
        </p>
      ))}
    </div>
  );
}

export function DriftSection(props: { cmp: ICompare }): JSX.Element {
  const drifts = props.cmp.drift ?? [];
  const arts = drifts.flatMap(d => d.artifacts);
  const drifted = arts.reduce((n, a) => n + a.columns.filter(c => (c.psi ?? 0) >= PSI_MODERATE).length, 0);
  const schema = arts.reduce((n, a) => n + a.schema.length, 0);
  const parts = [
    drifted ? `${drifted} column(s) at PSI ≥ ${PSI_MODERATE}` : '',
    schema ? `${schema} schema change(s)` : ''
  ].filter(Boolean);
  return (
    <section className={`same-nb-v-cmp-section same-nb-v-drift ${parts.length ? 'same-nb-v-has-diff' : 'same-nb-v-no-diff'}`} data-section="drift">
      <h3>
        Data drift
        <span className="same-nb-v-cmp-count">{parts.length ? ` — ${parts.join(', ')}` : ' — no drift'}</span>
      </h3>
      <p className="same-nb-v-dim same-nb-v-drift-explain">{PSI_EXPLAINED}</p>
      {drifts.length ? (
        drifts.map(d => <OneDrift key={d.run} drift={d} many={drifts.length > 1} />)
      ) : (
        <p className="same-nb-v-dim">No drift reported (a server without data profiles).</p>
      )}
    </section>
  );
}
