import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { describe, expect, it } from 'vitest';
import { powertoolsTelemetry, quietTelemetry, withDefaults } from '../../pipeline/observability';

describe('telemetry', () => {
  it('is quiet by default: no log line, no metric, work still runs', async () => {
    const telemetry = withDefaults();
    expect(telemetry).toEqual(quietTelemetry);
    telemetry.logger.info('nothing to see', { runId: 'r' });
    telemetry.metrics.count('ItemsScanned', 10);
    expect(await telemetry.tracer.trace('OpenSearch.bulk', async () => 42)).toBe(42);
  });

  it('counts into Powertools metrics, skips zeros, and traces without an active segment', async () => {
    // Prepare
    const metrics = new Metrics({ namespace: 'ddb2os-test', serviceName: 'worker' });
    const telemetry = powertoolsTelemetry({
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics,
      tracer: new Tracer({ enabled: false }),
    });

    // Act
    telemetry.metrics.count('DocumentsCreated', 0);
    const before = metrics.hasStoredMetrics();
    telemetry.metrics.count('DocumentsCreated', 5);
    const traced = telemetry.tracer.trace('OpenSearch.bulk', async () => {
      throw new Error('bulk failed');
    });

    // Assess
    expect(before).toBe(false);
    expect(metrics.hasStoredMetrics()).toBe(true);
    await expect(traced).rejects.toThrow('bulk failed');
    metrics.clearMetrics();
  });
});
