// "Debug in notebook": bind a recorded step's inputs and parameters in the notebook's own kernel.
// The server gives the code (`same_nb.load_step(...)`, checked loadable); it runs through
// `kernel.requestExecute`, never as a cell, so the user's notebook is not modified. What the kernel
// printed (or the error, e.g. an artifact whose hash no longer verifies) goes to `debugResults`.
import { Notification } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';

import { api, ApiError, request } from '../api';
import { analysisFor } from '../notebook/analysis';
import { debugResults, IDebugResult } from './results';

/** GET runs/N/steps/STEP/debug: the code to run in the notebook's kernel, and what it will bind. */
export interface IDebugCode {
  code: string;
  run_id: number;
  step: string;
  status: string;
  source_run_id: number;
  inputs: string[];
  params: string[];
}

export const debugApi = {
  code: (path: string, runId: number, step: string) =>
    request<IDebugCode>(`runs/${runId}/steps/${encodeURIComponent(step)}/debug`, { path })
};

/** What the debug action needs from the application (provided by index.ts). */
export interface IDebugContext {
  /** The notebook panel of `path`: the open one, else opened with the document manager. */
  notebook(path: string): Promise<NotebookPanel | null>;
  /** Show a cell (by id, else 1-based number) with the cursor on `line`, focusing the notebook. */
  showCell(panel: NotebookPanel, cellId: string | null, cell: number | null, line: number | null): void;
}

/** A reason, meant for the user, why the step could not be loaded. */
class DebugError extends Error {}

interface IKernelReply {
  ok: boolean;
  text: string; // streams and results as the kernel printed them
  error: string; // "Name: message" and the traceback, when it failed
}

// Tracebacks come with terminal colours.
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

function message(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

/** The panel's kernel; starts one (the notebook's kernel spec, else the default) when it has none. */
async function ensureKernel(panel: NotebookPanel): Promise<Kernel.IKernelConnection> {
  const context = panel.sessionContext;
  await context.ready;
  let kernel = context.session?.kernel ?? null;
  if (!kernel || kernel.status === 'dead') {
    const name = context.kernelPreference.name || context.specsManager.specs?.default;
    if (!name) {
      throw new DebugError('The notebook has no kernel and this server offers no kernel to start.');
    }
    try {
      kernel = await context.changeKernel({ name });
    } catch (error) {
      throw new DebugError(`The notebook has no kernel and starting one (${name}) failed: ${message(error)}`);
    }
    if (!kernel) {
      throw new DebugError(`The notebook has no kernel and starting one (${name}) failed.`);
    }
  }
  return kernel;
}

/** Run `code` in `kernel` outside the notebook's cells (no history), collecting what it printed. */
async function execute(kernel: Kernel.IKernelConnection, code: string): Promise<IKernelReply> {
  const out: string[] = [];
  let error = '';
  const future = kernel.requestExecute({ code, silent: false, store_history: false, stop_on_error: true });
  future.onIOPub = msg => {
    if (KernelMessage.isStreamMsg(msg)) {
      out.push(msg.content.text);
    } else if (KernelMessage.isErrorMsg(msg)) {
      const { ename, evalue, traceback } = msg.content;
      const trace = plain((traceback ?? []).join('\n')).trim();
      error = trace && trace !== `${ename}: ${evalue}` ? trace : `${ename}: ${evalue}`;
    } else if (KernelMessage.isExecuteResultMsg(msg) || KernelMessage.isDisplayDataMsg(msg)) {
      const value = msg.content.data['text/plain'];
      if (typeof value === 'string') {
        out.push(`${value}\n`);
      }
    }
  };
  let reply: KernelMessage.IExecuteReplyMsg;
  try {
    reply = await future.done;
  } catch (err) {
    throw new DebugError(`The kernel stopped before the step was loaded: ${message(err)}`);
  } finally {
    future.dispose();
  }
  const content = reply.content;
  if (content.status === 'error' && !error) {
    error = `${content.ename}: ${content.evalue}`;
  } else if (content.status === 'aborted') {
    error = 'The kernel aborted the request (an earlier request failed).';
  }
  return { ok: content.status === 'ok', text: plain(out.join('')), error };
}

/** Where to put the cursor afterwards: the failing line, else the step's first cell. */
async function cellOf(
  panel: NotebookPanel,
  path: string,
  runId: number,
  step: string
): Promise<{ cellId: string | null; cell: number | null; line: number | null } | null> {
  try {
    const err = (await api.run(path, runId)).steps?.find(s => s.step_name === step)?.error;
    if (err && (err.cell_id || err.cell)) {
      return { cellId: err.cell_id ?? null, cell: err.cell ?? null, line: err.line ?? null };
    }
  } catch {
    // fall back to the analysis of the notebook as it is now
  }
  const first = analysisFor(panel).inspection?.pipeline.steps.find(s => s.name === step)?.cells[0];
  return first ? { cellId: first.id, cell: first.number, line: null } : null;
}

/** Load `step` of run `runId` of notebook `path` into that notebook's kernel; the outcome is also
 * recorded in `debugResults` (shown under the step in the sidebar) and, with `notify`, notified. Never throws. */
export async function debugStep(
  context: IDebugContext,
  path: string,
  runId: number,
  step: string,
  notify = true
): Promise<IDebugResult> {
  const base = { path, runId, step, inputs: [] as string[], params: [] as string[] };
  const name = path.split('/').pop() ?? path;
  let result: IDebugResult = {
    ...base,
    state: 'loading',
    summary: `Loading step “${step}” of run #${runId} into the kernel of ${name}…`,
    output: ''
  };
  debugResults.set(result);
  let panel: NotebookPanel | null = null;
  try {
    const debug = await debugApi.code(path, runId, step);
    base.inputs = debug.inputs;
    base.params = debug.params;
    result = { ...result, ...base };
    debugResults.set(result);
    try {
      panel = await context.notebook(path);
    } catch (error) {
      throw new DebugError(`Cannot open ${path}: ${message(error)}`);
    }
    if (!panel) {
      throw new DebugError(`Cannot open ${path} as a notebook.`);
    }
    await panel.context.ready;
    const kernel = await ensureKernel(panel);
    const reply = await execute(kernel, debug.code);
    if (reply.ok) {
      const names = [...debug.inputs, ...debug.params];
      result = {
        ...base,
        state: 'bound',
        summary:
          (names.length ? `Now in the kernel of ${name}: ${names.join(', ')}. ` : `Loaded; the step reads nothing. `) +
          'Run the step’s cells to debug it.',
        output: reply.text
      };
    } else {
      const missing = /ModuleNotFoundError: No module named 'same_nb'/.test(reply.error)
        ? ' The kernel cannot import same_nb: install same-nb in the environment of the notebook’s kernel.'
        : '';
      result = {
        ...base,
        state: 'failed',
        summary: `Step “${step}” of run #${runId} could not be loaded into the kernel of ${name}.${missing}`,
        output: [reply.text.trim(), reply.error].filter(Boolean).join('\n')
      };
    }
  } catch (error) {
    const status = error instanceof ApiError && error.status ? ` (HTTP ${error.status})` : '';
    result = {
      ...base,
      state: 'failed',
      summary: `Cannot debug step “${step}” of run #${runId}${status}: ${message(error)}`,
      output: ''
    };
  }
  debugResults.set(result);
  if (notify && result.state === 'bound') {
    Notification.success(`Step “${step}” of run #${runId}: ${result.summary}`, { autoClose: 6000 });
  } else if (notify) {
    Notification.error(result.summary, { autoClose: 10000 });
  }
  if (panel && result.state === 'bound') {
    const target = await cellOf(panel, path, runId, step);
    if (target) {
      context.showCell(panel, target.cellId, target.cell, target.line);
    }
  }
  return result;
}
