// The sidebar's sweep form: values per parameter (comma-separated, typed like the run form), the grid
// size as it is typed, and a button that starts the sweep and opens its comparison table.
import * as React from 'react';

import { defaultText } from './params';
import { Section } from './section';
import { SidebarModel } from './model';
import { checkGrid, ISweepStarted } from './sweeps';

function example(text: string, type: string): string {
  if (type === 'int') {
    const n = Number(text);
    return Number.isFinite(n) ? `${n}, ${n + 1}, ${n + 2}` : '1, 2, 3';
  }
  if (type === 'float') {
    const n = Number(text);
    return Number.isFinite(n) && n !== 0 ? `${n / 10}, ${n}, ${n * 10}` : '0.1, 1.0, 10.0';
  }
  if (type === 'bool') {
    return 'True, False';
  }
  return `${text}, …`;
}

export function SweepForm(props: { model: SidebarModel; onStarted: (started: ISweepStarted) => void }) {
  const { model } = props;
  const params = model.inspection?.pipeline.parameters ?? [];
  const [texts, setTexts] = React.useState<Record<string, string>>({});
  const [jobs, setJobs] = React.useState('');
  const [notice, setNotice] = React.useState<{ text: string; error: boolean } | null>(null);
  if (!params.length) {
    return null;
  }
  const check = checkGrid(params, texts);
  const axes = Object.keys(check.grid);
  const jobsValue = jobs.trim() ? Number(jobs) : undefined;
  const jobsProblem =
    jobsValue !== undefined && !(Number.isInteger(jobsValue) && jobsValue >= 1 && jobsValue <= 64)
      ? 'parallel runs: a whole number from 1 to 64'
      : null;
  const problems = [...Object.values(check.problems), ...(jobsProblem ? [jobsProblem] : [])];
  const ok = (model.inspection?.ok ?? false) && !model.analysis?.error;
  const disabled = !ok || !axes.length || problems.length > 0 || model.starting;
  const summary = axes.length
    ? `${axes.map(a => `${a} (${check.grid[a].length})`).join(' × ')} = ${check.points} run${check.points === 1 ? '' : 's'}`
    : 'Give values to one parameter or more.';
  return (
    <Section title="Sweep" name="sweep" initiallyOpen={false} className="same-nb-sweep">
      <p className="same-nb-dim">
        One run per combination; the other parameters as in Run. Steps that do not read a swept parameter run
        once and are shared.
      </p>
      {params.map(p => (
        <label key={p.name} className="same-nb-param">
          <span className="same-nb-param-name" title={`${p.name} (${p.type})`}>
            {p.name}
          </span>
          <input
            className={`jp-mod-styled same-nb-sweep-values ${check.problems[p.name] ? 'same-nb-invalid' : ''}`}
            data-param={p.name}
            value={texts[p.name] ?? ''}
            placeholder={example(defaultText(p), p.type)}
            title={check.problems[p.name] ?? 'Comma-separated values; leave empty to keep the Run value'}
            onChange={e => setTexts({ ...texts, [p.name]: e.target.value })}
          />
        </label>
      ))}
      <label className="same-nb-param">
        <span className="same-nb-param-name" title="How many runs at once (default: the machine's cores)">
          parallel
        </span>
        <input
          className={`jp-mod-styled same-nb-sweep-jobs ${jobsProblem ? 'same-nb-invalid' : ''}`}
          value={jobs}
          placeholder="auto"
          inputMode="numeric"
          onChange={e => setJobs(e.target.value)}
        />
      </label>
      {problems.map((p, i) => (
        <div key={i} className="same-nb-param-problem">
          {p}
        </div>
      ))}
      <div className="same-nb-dim same-nb-sweep-summary">{summary}</div>
      <button
        className="jp-mod-styled jp-mod-accept same-nb-sweep-button"
        disabled={disabled}
        title={!ok ? 'Fix the problems first' : 'Run every combination locally as one sweep'}
        onClick={() => {
          setNotice({ text: 'Starting the sweep…', error: false });
          void model.startSweep(check.grid, jobsValue).then(result => {
            setNotice(result.text ? { text: result.text, error: result.error } : null);
            if (result.started) {
              props.onStarted(result.started);
            }
          });
        }}
      >
        {check.points > 0 ? `Start sweep (${check.points} runs)` : 'Start sweep'}
      </button>
      {notice ? (
        <p className={`same-nb-notice same-nb-sweep-notice ${notice.error ? 'same-nb-error-text' : ''}`} role="status">
          {notice.text}
        </p>
      ) : null}
    </Section>
  );
}
