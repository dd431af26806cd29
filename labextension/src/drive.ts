// A read-only drive for executed step notebooks.
//
// They live under the hidden `.same/runs/` folder, which Jupyter's contents API refuses to serve,
// so the document manager opens them as `SameNbRun:<server path>` and this drive reads them from
// the extension's API. They are records of a run: nothing can be written back.
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { api } from './api';

export const DRIVE_NAME = 'SameNbRun';

/**
 * The document path of an executed notebook. With a run id, its name carries the run number
 * ("#12 train.ipynb"), so the tab says which run it is a record of; the drive strips it again.
 */
export function drivePath(serverPath: string, runId?: number): string {
  if (runId === undefined) {
    return `${DRIVE_NAME}:${serverPath}`;
  }
  const slash = serverPath.lastIndexOf('/');
  return `${DRIVE_NAME}:${serverPath.slice(0, slash + 1)}#${runId} ${serverPath.slice(slash + 1)}`;
}

/** The server path of a drive path (without the run number in its name). */
export function serverPath(localPath: string): string {
  return localPath.replace(/(^|\/)#\d+ ([^/]+)$/, '$1$2');
}

function readOnly(): Promise<never> {
  return Promise.reject(
    new Error(
      'Executed step notebooks are read-only records of a run; copy the cells you need into your notebook.'
    )
  );
}

export class ExecutedNotebookDrive implements Contents.IDrive {
  readonly name = DRIVE_NAME;
  readonly serverSettings = ServerConnection.makeSettings();
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _disposed = false;

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string): Promise<Contents.IModel> {
    // Not writable: JupyterLab then neither saves, autosaves nor checkpoints it.
    const model = (await api.executed(serverPath(localPath))) as Contents.IModel;
    return { ...model, name: localPath.split('/').pop() ?? model.name, path: localPath, writable: false };
  }

  async getDownloadUrl(): Promise<string> {
    return readOnly();
  }

  newUntitled(): Promise<Contents.IModel> {
    return readOnly();
  }

  delete(): Promise<void> {
    return readOnly();
  }

  rename(): Promise<Contents.IModel> {
    return readOnly();
  }

  save(): Promise<Contents.IModel> {
    return readOnly();
  }

  copy(): Promise<Contents.IModel> {
    return readOnly();
  }

  async createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return readOnly();
  }

  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }

  restoreCheckpoint(): Promise<void> {
    return readOnly();
  }

  deleteCheckpoint(): Promise<void> {
    return readOnly();
  }
}
