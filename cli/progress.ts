/**
 * Progress a person can watch. On a terminal: a block redrawn in place, one
 * row per segment (status, items, documents, rate, a bar) or, with many
 * segments, a compact table of the busiest ones, and an overall bar with ETA.
 * Elsewhere (CI logs, pipes): plain timestamped lines, one per segment event
 * and one overall line every few seconds.
 */
export type SegmentState = 'pending' | 'running' | 'retrying' | 'done' | 'failed';

export interface SegmentView {
  segment: number;
  state: SegmentState;
  scanned: number;
  created: number;
  alreadyPresent: number;
  failed: number;
  /** Items per second over the segment's life so far. */
  rate: number;
  startedAt?: number;
  note?: string;
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const ROWS_SHOWN_IN_FULL = 16;

export class ProgressDisplay {
  private readonly segments: SegmentView[];
  private readonly started = Date.now();
  private drawnLines = 0;
  private lastPlainOverall = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly tty: boolean;

  constructor(
    private readonly out: ProgressOutput,
    totalSegments: number,
    /** Items the table holds (DescribeTable's estimate), for the ETA; 0 when unknown. */
    private readonly expectedItems: number,
    options: { tty?: boolean; now?: () => number } = {},
  ) {
    this.tty = options.tty ?? out.isTTY === true;
    this.segments = Array.from({ length: totalSegments }, (_, segment) => ({
      segment,
      state: 'pending' as SegmentState,
      scanned: 0,
      created: 0,
      alreadyPresent: 0,
      failed: 0,
      rate: 0,
    }));
    if (this.tty) {
      this.timer = setInterval(() => this.redraw(), 250);
      this.timer.unref();
    }
  }

  /** Records a segment's progress (counts are cumulative for the segment). */
  update(segment: number, change: Partial<Omit<SegmentView, 'segment'>>): void {
    const view = this.segments[segment];
    if (!view) return;
    const before = view.state;
    if (change.state === 'running' && view.startedAt === undefined) view.startedAt = Date.now();
    Object.assign(view, change);
    if (view.startedAt !== undefined) {
      const seconds = Math.max(0.001, (Date.now() - view.startedAt) / 1000);
      view.rate = view.scanned / seconds;
    }
    if (this.tty) return;
    if (before !== view.state && view.state !== 'running') {
      this.plain(
        `segment ${view.segment} ${view.state}: ${fmt(view.scanned)} items, ${fmt(view.created)} created, ` +
          `${fmt(view.alreadyPresent)} already present, ${fmt(view.failed)} failed${view.note ? ` (${view.note})` : ''}`,
      );
    }
    if (Date.now() - this.lastPlainOverall >= 5_000) {
      this.lastPlainOverall = Date.now();
      this.plain(this.overallLine());
    }
  }

  /** A message above the live block (or a plain line). */
  log(message: string): void {
    if (this.tty) {
      this.clear();
      this.out.write(`${message}\n`);
      this.redraw();
    } else {
      this.plain(message);
    }
  }

  /** Draws the final state and stops redrawing. */
  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) {
      this.redraw();
      this.drawnLines = 0;
    } else {
      this.plain(this.overallLine());
    }
  }

  totals(): { scanned: number; created: number; alreadyPresent: number; failed: number; done: number } {
    let scanned = 0;
    let created = 0;
    let alreadyPresent = 0;
    let failed = 0;
    let done = 0;
    for (const view of this.segments) {
      scanned += view.scanned;
      created += view.created;
      alreadyPresent += view.alreadyPresent;
      failed += view.failed;
      if (view.state === 'done') done += 1;
    }
    return { scanned, created, alreadyPresent, failed, done };
  }

  /** The overall line: segments done, items, rate, a bar and the ETA. */
  overallLine(): string {
    const totals = this.totals();
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = totals.scanned / seconds;
    const fraction = this.fractionDone(totals.scanned, totals.done);
    const eta = fraction > 0 && fraction < 1 ? ` ETA ${duration((seconds / fraction) * (1 - fraction))}` : '';
    return (
      `${bar(fraction, 24)} ${(fraction * 100).toFixed(0).padStart(3)}%  segments ${totals.done}/${this.segments.length}` +
      `  items ${fmt(totals.scanned)}  created ${fmt(totals.created)}  present ${fmt(totals.alreadyPresent)}` +
      `  failed ${fmt(totals.failed)}  ${fmt(Math.round(rate))}/s  ${duration(seconds)}${eta}`
    );
  }

  private fractionDone(scanned: number, done: number): number {
    const bySegments = done / this.segments.length;
    if (this.expectedItems > 0) return Math.min(1, Math.max(bySegments, scanned / this.expectedItems));
    return bySegments;
  }

  private rows(): string[] {
    const perSegment = this.expectedItems > 0 ? this.expectedItems / this.segments.length : 0;
    const row = (view: SegmentView) => {
      const fraction =
        view.state === 'done'
          ? 1
          : perSegment > 0
            ? Math.min(0.99, view.scanned / perSegment)
            : view.scanned > 0
              ? 0.5
              : 0;
      return (
        `  ${String(view.segment).padStart(5)} ${view.state.padEnd(8)} ${bar(fraction, 16)} ` +
        `items ${fmt(view.scanned).padStart(9)}  docs ${fmt(view.created + view.alreadyPresent).padStart(9)}  ` +
        `failed ${fmt(view.failed).padStart(5)}  ${fmt(Math.round(view.rate)).padStart(7)}/s${view.note ? `  ${view.note}` : ''}`
      );
    };
    if (this.segments.length <= ROWS_SHOWN_IN_FULL) return this.segments.map(row);
    const counts = new Map<SegmentState, number>();
    for (const view of this.segments) counts.set(view.state, (counts.get(view.state) ?? 0) + 1);
    const summary = ['running', 'retrying', 'pending', 'done', 'failed']
      .map((state) => `${state} ${counts.get(state as SegmentState) ?? 0}`)
      .join('  ');
    const busy = this.segments
      .filter((view) => view.state === 'running' || view.state === 'retrying' || view.state === 'failed')
      .slice(0, ROWS_SHOWN_IN_FULL - 2);
    return [`  segments: ${summary}`, ...busy.map(row)];
  }

  private redraw(): void {
    if (!this.tty) return;
    this.clear();
    const width = this.out.columns ?? 120;
    const lines = [...this.rows(), this.overallLine()].map((line) => line.slice(0, width - 1));
    this.out.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  private clear(): void {
    if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}A\x1b[0J`);
    this.drawnLines = 0;
  }

  private plain(message: string): void {
    this.out.write(`${new Date().toISOString()} ${message}\n`);
  }
}

export function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function fmt(value: number): string {
  return value.toLocaleString('en-US');
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
