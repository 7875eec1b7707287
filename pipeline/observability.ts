/**
 * What the backfill code logs, counts and traces through. The Lambda handlers
 * hand in Powertools' Logger, Metrics and Tracer (powertoolsTelemetry); local
 * runs and tests get quietTelemetry, so a CLI shows its own progress display
 * and no JSON log lines. Item contents never reach a log at info or above.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';

/** Logger methods the backfill uses; a Powertools Logger fits, and so does `console`. */
export interface TelemetryLogger {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** The metrics the worker publishes (namespace and dimensions come from the Lambda's Powertools setup). */
export type BackfillMetric =
  | 'ItemsScanned'
  | 'DocumentsCreated'
  | 'DocumentsAlreadyPresent'
  | 'DocumentsFailed'
  | 'SegmentsCompleted'
  | 'SegmentsFailed'
  | 'BulkRetries';

export interface TelemetryMetrics {
  count(name: BackfillMetric, value: number): void;
}

export interface TelemetryTracer {
  /** Runs `work` in a subsegment named `name` (no-op without an active trace). */
  trace<T>(name: string, work: () => Promise<T>): Promise<T>;
}

export interface Telemetry {
  logger: TelemetryLogger;
  metrics: TelemetryMetrics;
  tracer: TelemetryTracer;
}

const silent = (): void => {};

/** No logs, no metrics, no traces: the default for local runs and tests. */
export const quietTelemetry: Telemetry = Object.freeze({
  logger: { debug: silent, info: silent, warn: silent, error: silent },
  metrics: { count: silent },
  tracer: { trace: <T>(_name: string, work: () => Promise<T>) => work() },
});

/** Fills what a partial telemetry leaves out with the quiet defaults. */
export function withDefaults(telemetry?: Partial<Telemetry>): Telemetry {
  return {
    logger: telemetry?.logger ?? quietTelemetry.logger,
    metrics: telemetry?.metrics ?? quietTelemetry.metrics,
    tracer: telemetry?.tracer ?? quietTelemetry.tracer,
  };
}

/**
 * Telemetry over Powertools instances. Subsegments hang off the current
 * segment without becoming the current one, because several bulk requests
 * of one segment run at the same time.
 */
export function powertoolsTelemetry(tools: { logger: Logger; metrics: Metrics; tracer: Tracer }): Telemetry {
  const { logger, metrics, tracer } = tools;
  return {
    logger,
    metrics: {
      count: (name, value) => {
        if (value > 0) metrics.addMetric(name, MetricUnit.Count, value);
      },
    },
    tracer: {
      trace: async (name, work) => {
        const parent = tracer.isTracingEnabled() ? tracer.getSegment() : undefined;
        const subsegment = parent?.addNewSubsegment(name);
        try {
          return await work();
        } catch (error) {
          if (error instanceof Error) subsegment?.addError(error);
          throw error;
        } finally {
          subsegment?.close();
        }
      },
    },
  };
}
