// The Runs view's "drift" button: which runs' step inputs drifted from their baseline (what
// `same-nb runs --drift` prints), each with its worst column and a link to the Compare view of
// baseline vs that run.
import * as React from 'react';

import { driftApi, IDriftedRuns } from '../api';
import { message } from './common';
import { num, psiReading, schemaText } from './drift';

const THRESHOLDS: { value: number; label: string }[] = [
  { value: 0.1, label: 'PSI ≥ 0.1 (moderate)' },
  { value: 0.25, label: 'PSI ≥ 0.25 (significant)' }
];

function DriftList(props: { result: IDriftedRuns; onCompare: (runs: number[]) => void }): JSX.Element {
  const { result } = props;
  return (
    <>
      <p className="same-nb-v-dim same-nb-v-drift-pop-head">
        {`Runs whose step inputs drifted from each run's previous successful run (PSI ≥ ${num(result.threshold)} or a schema change), of the ${result.checked} newest:`}
      </p>
      {result.runs.length ? (
        <ul className="same-nb-v-drifted">
          {result.runs.map(r => {
            const w = r.worst;
            return (
              <li key={r.id} className="same-nb-v-drifted-run" data-run-id={r.id} data-baseline={r.baseline}>
                <span className="same-nb-v-drifted-what">
                  <b>{`#${r.id}`}</b>
                  {r.name ? <span className="same-nb-v-dim">{` (${r.name})`}</span> : null}
                  {` vs #${r.baseline}: `}
                  {w ? (
                    <>
                      {'worst '}
                      <span className="same-nb-v-mono">{`${w.step}.${w.variable}['${w.column}']`}</span>
                      {' PSI '}
                      <span className={`same-nb-v-drifted-psi same-nb-v-drift-${psiReading(w.psi)}`}>{num(w.psi)}</span>
                      {` (${psiReading(w.psi)})`}
                    </>
                  ) : (
                    'no comparable column'
                  )}
                  {r.schema.length ? (
                    <span className="same-nb-v-drifted-schema">
                      {`; ${r.schema.length} schema change(s): ${schemaText(r.schema[0])}`}
                    </span>
                  ) : null}
                </span>
                <button
                  className="same-nb-v-linkbutton same-nb-v-drift-compare"
                  title={`Open the Compare view of run #${r.baseline} (base) and run #${r.id}`}
                  onClick={() => props.onCompare([r.baseline, r.id])}
                >
                  {`compare #${r.baseline} ↔ #${r.id}`}
                </button>
              </li>
            );
          })}
        </ul>
      ) : (
        <p className="same-nb-v-empty same-nb-v-drift-none">No run's inputs drifted.</p>
      )}
      {result.no_baseline.length ? (
        <p className="same-nb-v-dim">
          {`No baseline (no earlier successful run) for run(s) ${result.no_baseline.map(i => `#${i}`).join(', ')}.`}
        </p>
      ) : null}
    </>
  );
}

export function DriftRunsButton(props: { path: string; onCompare: (runs: number[]) => void }): JSX.Element {
  const [open, setOpen] = React.useState(false);
  const [threshold, setThreshold] = React.useState(THRESHOLDS[0].value);
  const [result, setResult] = React.useState<IDriftedRuns | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const load = React.useCallback(async () => {
    setBusy(true);
    try {
      setResult(await driftApi.drifted(props.path, undefined, threshold));
      setError(null);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  }, [props.path, threshold]);
  React.useEffect(() => {
    if (open) {
      void load();
    }
  }, [open, load]);
  return (
    <span className="same-nb-v-drift-wrap" onKeyDown={e => e.key === 'Escape' && setOpen(false)}>
      <button
        className={`jp-mod-styled same-nb-v-drift-button ${open ? 'same-nb-v-pressed' : ''}`}
        aria-pressed={open}
        title="Which runs' step inputs drifted from their baseline run (same-nb runs --drift)"
        onClick={() => setOpen(!open)}
      >
        drift
      </button>
      {open ? (
        <div className="same-nb-v-drift-pop" role="dialog" aria-label="Runs whose inputs drifted">
          <div className="same-nb-v-drift-pop-bar">
            <b>Data drift</b>
            <select
              className="jp-mod-styled same-nb-v-drift-threshold"
              value={threshold}
              onChange={e => setThreshold(Number(e.target.value))}
            >
              {THRESHOLDS.map(t => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
            <span className="same-nb-v-spacer" />
            <button className="same-nb-v-linkbutton" disabled={busy} onClick={() => void load()}>
              {busy ? 'checking…' : 'refresh'}
            </button>
            <button className="same-nb-v-icon-button" title="Close" onClick={() => setOpen(false)}>
              ×
            </button>
          </div>
          {error ? <p className="same-nb-v-error-line">{`Cannot check drift: ${error}`}</p> : null}
          {!result && !error ? <p className="same-nb-v-empty">Checking the runs' inputs…</p> : null}
          {result ? (
            <DriftList
              result={result}
              onCompare={runs => {
                setOpen(false);
                props.onCompare(runs);
              }}
            />
          ) : null}
        </div>
      ) : null}
    </span>
  );
}
