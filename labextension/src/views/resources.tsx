// Per-step resources in the views: the Compare view's "Resources" section (one column per run, growth
// over 2x flagged as `same-nb compare` flags it) and the rows of the Pipeline view's step panel.
import * as React from 'react';

import { ICompare, ICompareResources, IGrowthFlag, IStepRun } from '../api';
import { bytesText, MEMORY_MEANING, secondsText } from '../resources';
import { RunHeads } from './common';

type Figure = 'peak_rss_bytes' | 'cpu_s' | 'time_s' | 'bytes_in' | 'bytes_out';

const FIGURES: { key: Figure; label: string; title: string; bytes: boolean }[] = [
  { key: 'peak_rss_bytes', label: 'peak memory', title: MEMORY_MEANING, bytes: true },
  { key: 'cpu_s', label: 'CPU', title: 'CPU time (user + system) of the step kernel and its child processes', bytes: false },
  { key: 'time_s', label: 'time', title: "running the step's cells (compute), else its wall time; none for a cache hit", bytes: false },
  { key: 'bytes_in', label: 'data in', title: 'bytes of the artifacts the step read', bytes: true },
  { key: 'bytes_out', label: 'data out', title: 'bytes of the artifacts the step wrote (or reused, when cached)', bytes: true }
];

// The flags' `what` names the figure it grew in (store/resources.py growth_flags).
const FLAGGED: Record<string, Figure> = { 'peak memory': 'peak_rss_bytes', time: 'time_s' };

function show(figure: Figure, value: number | null | undefined): string {
  const f = FIGURES.find(x => x.key === figure);
  return (f?.bytes ? bytesText(value) : secondsText(value)) || '—';
}

function ratioText(flag: IGrowthFlag): string {
  return flag.ratio ? `${Number(flag.ratio.toPrecision(3))}×` : 'grew';
}

/** "heavy: peak memory 13.4× from run #1 to run #2 (16.9 MB → 226 MB)", as `same-nb compare` says it. */
export function flagText(flag: IGrowthFlag): string {
  const figure = FLAGGED[flag.what] ?? 'time_s';
  return (
    `${flag.step}: ${flag.what} ${ratioText(flag)} from run #${flag.runs[0]} to run #${flag.runs[1]} ` +
    `(${show(figure, flag.from)} → ${show(figure, flag.to)})`
  );
}

function flagTitle(flag: IGrowthFlag): string {
  return (
    `${flagText(flag)}.\nFlagged because it grew more than 2x from the base run ` +
    '(growth under 20 MB of memory or 0.5 s of time is never flagged: such figures move with the machine\'s load).'
  );
}

// Past this many steps, those that did not grow fold away: five rows a step would bury the drift
// and code sections of a large pipeline.
const FOLD_OVER_STEPS = 4;

function StepRows(props: {
  step: string;
  figures: ICompareResources;
  runs: number[];
  flagFor: (step: string, figure: Figure, run: number) => IGrowthFlag | undefined;
}): JSX.Element {
  const { step, figures, runs, flagFor } = props;
  // A figure no run has (bytes in of a step that reads nothing, everything of a step cached
  // everywhere) would be a row of dashes.
  const known = FIGURES.filter(f => (figures[f.key] ?? []).some(v => v !== null && v !== undefined));
  const shown = known.length ? known : FIGURES.slice(0, 1);
  return (
    <>
      {shown.map((f, i) => {
        const values = figures[f.key] ?? runs.map(() => null);
        const grew = runs.some(r => flagFor(step, f.key, r));
        return (
          <tr
            key={f.key}
            data-step={step}
            data-figure={f.key}
            className={`${i === 0 ? 'same-nb-v-res-first' : ''} ${grew ? 'same-nb-v-res-grew' : ''}`}
          >
            {i === 0 ? (
              <th className="same-nb-v-rowhead same-nb-v-res-step" rowSpan={shown.length} title={step}>
                {step}
              </th>
            ) : null}
            <td className="same-nb-v-dim" title={f.title}>
              {f.label}
            </td>
            {runs.map((r, k) => {
              const flag = flagFor(step, f.key, r);
              return (
                <td key={r} className={`same-nb-v-num same-nb-v-res-value ${flag ? 'same-nb-v-res-flagged' : ''}`} data-run={r}>
                  {show(f.key, values[k])}
                  {flag ? (
                    <span className="same-nb-v-res-flag" title={flagTitle(flag)}>
                      {`▲ ${ratioText(flag)}`}
                    </span>
                  ) : null}
                </td>
              );
            })}
          </tr>
        );
      })}
    </>
  );
}

export function ResourcesSection(props: { cmp: ICompare; runs: number[] }): JSX.Element {
  const { cmp, runs } = props;
  const flags = cmp.flags ?? [];
  const [open, setOpen] = React.useState(false);
  const steps = Object.keys(cmp.steps).filter(s => cmp.steps[s].resources);
  const flagFor = (step: string, figure: Figure, run: number) =>
    flags.find(f => f.step === step && FLAGGED[f.what] === figure && f.runs[1] === run);
  const fold = steps.length > FOLD_OVER_STEPS;
  const loud = fold ? steps.filter(s => flags.some(f => f.step === s)) : steps;
  const quiet = fold ? steps.filter(s => !loud.includes(s)) : [];
  const table = (names: string[]) => (
    <table className="same-nb-v-table same-nb-v-compare-table same-nb-v-res-table">
      <thead>
        <tr>
          <th>step</th>
          <th />
          <RunHeads runs={runs} />
        </tr>
      </thead>
      <tbody>
        {names.map(s => (
          <StepRows key={s} step={s} figures={cmp.steps[s].resources!} runs={runs} flagFor={flagFor} />
        ))}
      </tbody>
    </table>
  );
  return (
    <section className={`same-nb-v-cmp-section same-nb-v-resources ${flags.length ? 'same-nb-v-has-diff' : 'same-nb-v-no-diff'}`} data-section="resources">
      <h3>
        Resources
        <span className="same-nb-v-cmp-count">
          {flags.length ? ` — ${flags.length} grew more than 2x` : ' — no step grew more than 2x'}
        </span>
      </h3>
      {flags.length ? (
        <ul className="same-nb-v-res-flags">
          {flags.map((f, i) => (
            <li key={i} className="same-nb-v-res-flagline" title={flagTitle(f)}>
              {flagText(f)}
            </li>
          ))}
        </ul>
      ) : null}
      {!steps.length ? (
        <p className="same-nb-v-dim">No resources recorded for these runs (runs from before they were measured, or Kubeflow runs).</p>
      ) : null}
      {loud.length ? table(loud) : null}
      {quiet.length ? (
        <details open={open} onToggle={e => setOpen((e.target as HTMLDetailsElement).open)}>
          <summary className="same-nb-v-dim">{`${quiet.length} step(s) that did not grow more than 2x`}</summary>
          {open ? table(quiet) : null}
        </details>
      ) : null}
      {steps.length ? (
        <p className="same-nb-v-dim same-nb-v-res-note">
          — : not measured (a cached step ran nothing). Hover a figure's name for what it measures.
        </p>
      ) : null}
    </section>
  );
}

/** The step panel's resource rows (a `same-nb-v-kv` grid: label, value pairs). */
export function StepResourceRows(props: { step: IStepRun }): JSX.Element {
  const { step } = props;
  const cached = step.cache_hit ? 'cached: nothing ran' : '—';
  return (
    <>
      <span title={MEMORY_MEANING}>peak memory</span>
      <span className="same-nb-v-side-mem" title={MEMORY_MEANING}>
        {bytesText(step.peak_rss_bytes) || cached}
      </span>
      <span>CPU</span>
      <span className="same-nb-v-side-cpu">{secondsText(step.cpu_s) || cached}</span>
      <span title="bytes of the artifacts the step read / wrote">data in / out</span>
      <span className="same-nb-v-side-bytes">{`${bytesText(step.bytes_in) || '—'} / ${bytesText(step.bytes_out) || '—'}`}</span>
    </>
  );
}
