// What "Debug in notebook" last did for each (notebook, run, step): shown under the step in the
// sidebar, whichever way it was started (the sidebar's button, the palette, another view).
import { ISignal, Signal } from '@lumino/signaling';

export type DebugState = 'loading' | 'bound' | 'failed';

export interface IDebugResult {
  path: string;
  runId: number;
  step: string;
  state: DebugState;
  /** One line for the user: what happened, or why not. */
  summary: string;
  /** What the kernel printed (the bound names and values), or the error text. */
  output: string;
  /** Names the step read and the parameters it saw, as the server listed them. */
  inputs: string[];
  params: string[];
}

const keyOf = (path: string, runId: number, step: string) => JSON.stringify([path, runId, step]);

class DebugResults {
  private _results = new Map<string, IDebugResult>();
  private _changed = new Signal<this, IDebugResult | null>(this);

  get changed(): ISignal<this, IDebugResult | null> {
    return this._changed;
  }

  get(path: string, runId: number, step: string): IDebugResult | null {
    return this._results.get(keyOf(path, runId, step)) ?? null;
  }

  set(result: IDebugResult): void {
    this._results.set(keyOf(result.path, result.runId, result.step), result);
    this._changed.emit(result);
  }

  clear(path: string, runId: number, step: string): void {
    this._results.delete(keyOf(path, runId, step));
    this._changed.emit(null);
  }
}

export const debugResults = new DebugResults();
