import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../cli/commands/run';
import { duration, ProgressDisplay } from '../../cli/progress';

function capture(isTTY: boolean) {
  let text = '';
  return {
    out: {
      write: (chunk: string) => {
        text += chunk;
      },
      isTTY,
      columns: 200,
    },
    text: () => text,
  };
}

describe('progress display', () => {
  it('writes one timestamped line per finished segment when not on a terminal', () => {
    const sink = capture(false);
    const display = new ProgressDisplay(sink.out, 2, 100);

    display.update(0, { state: 'running', scanned: 10 });
    display.update(0, { state: 'done', scanned: 50, created: 49, alreadyPresent: 1 });
    display.update(1, { state: 'failed', scanned: 3, note: 'SinkUnavailableError' });
    display.finish();

    const lines = sink.text().trim().split('\n');
    expect(lines.every((line) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(line))).toBe(true);
    expect(sink.text()).toContain('segment 0 done: 50 items, 49 created, 1 already present, 0 failed');
    expect(sink.text()).toContain(
      'segment 1 failed: 3 items, 0 created, 0 already present, 0 failed (SinkUnavailableError)',
    );
    expect(lines.at(-1)).toMatch(/segments 1\/2 {2}items 53 {2}created 49 {2}present 1 {2}failed 0/);
  });

  it('redraws a block in place on a terminal, one row per segment and an overall bar', () => {
    const sink = capture(true);
    const display = new ProgressDisplay(sink.out, 3, 300);

    display.update(1, { state: 'running', scanned: 50, created: 50 });
    display.log('a message above the block');
    display.finish();

    const text = sink.text();
    expect(text).toContain('a message above the block\n');
    expect(text).toContain('\x1b[4A\x1b[0J'); // moves up over the 3 rows + overall line to redraw
    expect(text).toMatch(/ {4}1 running +\[#+\.+\] items +50/);
    expect(text).toMatch(/\[#+\.*\] +\d+% {2}segments 0\/3/);
  });

  it('shows a compact table when there are many segments', () => {
    const sink = capture(true);
    const display = new ProgressDisplay(sink.out, 500, 0);

    display.update(7, { state: 'running', scanned: 5 });
    display.update(8, { state: 'done', scanned: 5 });
    display.finish();

    expect(sink.text()).toContain('segments: running 1  retrying 0  pending 498  done 1  failed 0');
  });

  it('formats durations for people', () => {
    expect([duration(5), duration(75), duration(7322)]).toEqual(['5s', '1m15s', '2h02m']);
  });
});

describe('progressReporter: the failed segments a failure line names', () => {
  const reporterOn = () =>
    progressReporter({ stdout: { write: () => true }, stderr: { write: () => true } } as never);
  const failure = (segment: number) =>
    ({ type: 'segment-failed', segment, attempt: 1, error: 'SinkUnavailableError', cause: 'x' }) as const;

  it('names them in order, once each, and forgets one that succeeded on its rerun', () => {
    const reporter = reporterOn();
    expect(reporter.failedSegmentsText()).toBe('');
    reporter.onEvent(failure(5));
    expect(reporter.failedSegmentsText()).toBe('segment 5 failed: ');
    reporter.onEvent(failure(2));
    reporter.onEvent(failure(5));
    reporter.onEvent(failure(7));
    reporter.onEvent({
      type: 'segment-done',
      segment: 7,
      result: { scanned: 1, created: 1, alreadyPresent: 0, failed: 0 } as never,
    });
    expect(reporter.failedSegmentsText()).toBe('segments 2, 5 failed: ');
  });
});
