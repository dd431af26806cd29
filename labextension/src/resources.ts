// A step run's resource figures as every view writes them, mirroring same_nb/text.py (bytes_text,
// seconds_text) so the UI and `same-nb show` / `compare` print the same "120 MB" and "0.412 s".

/** The step-level figures the runs API and compare report; any may be null (cached, old or Kubeflow runs). */
export interface IResourceFigures {
  peak_rss_bytes?: number | null;
  cpu_s?: number | null;
  bytes_in?: number | null;
  bytes_out?: number | null;
}

/** Bytes in decimal units to three significant digits: 512 B, 1.5 kB, 120 MB, 2.4 GB ('' for none). */
export function bytesText(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) {
    return '';
  }
  let size = value;
  let unit = 'B';
  for (const next of ['kB', 'MB', 'GB', 'TB']) {
    if (Math.abs(size) < 999.5) {
      break;
    }
    size /= 1000;
    unit = next;
  }
  if (unit === 'B') {
    return `${Math.trunc(size)} B`;
  }
  return Math.abs(size) >= 999.5 ? `${size.toFixed(0)} ${unit}` : `${Number(size.toPrecision(3))} ${unit}`;
}

/** Seconds to about three significant digits, trailing zeros dropped: 0.412 s, 6.8 s, 312 s. */
export function secondsText(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) {
    return '';
  }
  const decimals = value < 1 ? 3 : value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${Number(value.toFixed(decimals))} s`;
}

/** What the memory figure means: not the kernel's whole footprint, which depends on the kernel mode. */
export const MEMORY_MEANING =
  "peak memory: the highest RSS of the step's kernel and its child processes above the kernel's memory at the step's start";

/** One tooltip line per known figure: "peak memory 120 MB", "CPU 1.2 s", "data in 3 kB", "data out 9 kB". */
export function resourceLines(step: IResourceFigures): string[] {
  const lines: string[] = [];
  if (step.peak_rss_bytes !== null && step.peak_rss_bytes !== undefined) {
    lines.push(`peak memory ${bytesText(step.peak_rss_bytes)}`);
  }
  if (step.cpu_s !== null && step.cpu_s !== undefined) {
    lines.push(`CPU ${secondsText(step.cpu_s)}`);
  }
  if (step.bytes_in !== null && step.bytes_in !== undefined) {
    lines.push(`data in ${bytesText(step.bytes_in)}`);
  }
  if (step.bytes_out !== null && step.bytes_out !== undefined) {
    lines.push(`data out ${bytesText(step.bytes_out)}`);
  }
  return lines;
}
