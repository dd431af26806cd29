// The sidebar's "Debug in notebook" button on a step run, and what it did, shown under the step.
import * as React from 'react';

import { debugResults, IDebugResult } from './results';
import { parsePrinted } from './table';

/** The latest outcome for one step run, re-rendered when it changes. */
function useDebugResult(path: string, runId: number, step: string): IDebugResult | null {
  const [result, setResult] = React.useState(() => debugResults.get(path, runId, step));
  React.useEffect(() => {
    const update = () => setResult(debugResults.get(path, runId, step));
    update();
    debugResults.changed.connect(update);
    return () => {
      debugResults.changed.disconnect(update);
    };
  }, [path, runId, step]);
  return result;
}

/** Debugging makes sense for a step that ran: failed, or computed (not taken from the cache). */
export function canDebug(status: string, cacheHit: boolean): boolean {
  return status === 'failed' || (status === 'success' && !cacheHit);
}

type Props = { path: string; runId: number; step: string; onDebug: () => void };

export function DebugButton({ path, runId, step, onDebug }: Props) {
  const result = useDebugResult(path, runId, step);
  const loading = result?.state === 'loading';
  return (
    <button
      className="jp-mod-styled same-nb-small-button same-nb-debug-step"
      disabled={loading}
      title={
        `Bind the inputs and parameters step “${step}” saw in run #${runId} in the notebook’s kernel ` +
        '(nothing is added to the notebook), then go to its failing cell to run it again'
      }
      onClick={onDebug}
    >
      {loading ? 'Loading…' : 'Debug in notebook'}
    </button>
  );
}

/** The kernel's printout: bound values one by one when it is load_step's table, else as printed. */
function Printed({ text, failed }: { text: string; failed: boolean }) {
  const printed = failed ? null : parsePrinted(text);
  if (!printed) {
    return <pre className="same-nb-log same-nb-debug-text">{text}</pre>;
  }
  return (
    <div className="same-nb-debug-text">
      {printed.before.map((line, i) => (
        <div key={`b${i}`} className="same-nb-dim">
          {line}
        </div>
      ))}
      <ul className="same-nb-debug-bound">
        {printed.bound.map(b => (
          <li
            key={b.name}
            data-name={b.name}
            title={`${b.name}: ${b.type} from ${b.source}${b.sha256 ? ` (sha256 ${b.sha256}…, verified)` : ''}`}
          >
            <code className="same-nb-code">{b.name}</code>
            {' = '}
            <code className="same-nb-debug-value">{b.value}</code>
            <span className="same-nb-dim">{` ${b.type} ← ${b.source}`}</span>
          </li>
        ))}
      </ul>
      {printed.after.map((line, i) => (
        <div key={`a${i}`} className="same-nb-dim">
          {line}
        </div>
      ))}
      <details className="same-nb-debug-raw">
        <summary>as printed in the kernel</summary>
        <pre className="same-nb-log">{text}</pre>
      </details>
    </div>
  );
}

export function DebugOutput({ path, runId, step }: Omit<Props, 'onDebug'>) {
  const result = useDebugResult(path, runId, step);
  if (!result) {
    return null;
  }
  return (
    <div className={`same-nb-debug-output same-nb-debug-state-${result.state}`} data-state={result.state} role="status">
      <div className="same-nb-row same-nb-debug-head">
        <span className={result.state === 'failed' ? 'same-nb-error-text same-nb-debug-summary' : 'same-nb-debug-summary'}>
          {result.summary}
        </span>
        {result.state !== 'loading' ? (
          <button
            className="same-nb-link same-nb-debug-close"
            aria-label="Hide the debug output"
            title="Hide"
            onClick={() => debugResults.clear(path, runId, step)}
          >
            ×
          </button>
        ) : null}
      </div>
      {result.output ? <Printed text={result.output} failed={result.state === 'failed'} /> : null}
    </div>
  );
}
