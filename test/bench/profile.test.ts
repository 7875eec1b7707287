/**
 * The profile split of `npm run bench`: which part of the backfill's
 * Node.js CPU a call frame's self time belongs to, and the split of a real
 * profile of the pipeline's own mapping and answer decoding.
 */
import { describe, expect, it } from 'vitest';
import { BENCH_KEY_SCHEMA, benchItems } from '../../bench/items';
import { PROFILE_PARTS, profilePart, profileWhile, splitProfile } from '../../bench/profile';
import { encodeDocument, mapItem } from '../../pipeline/mapping/mapping';
import { decodeWireItem } from '../../pipeline/table/sdk-json';

const repo = 'file:///work/ddb2os';

describe('profilePart', () => {
  it.each([
    ['(garbage collector)', '', 'gc'],
    ['(idle)', '', 'idle'],
    ['sendForJson', `${repo}/pipeline/table/sdk-json.ts`, 'json'],
    ['encodeDocument', `${repo}/pipeline/mapping/mapping.ts`, 'json'],
    ['valueToJson', `${repo}/pipeline/mapping/attribute-values.ts`, 'mapping'],
    ['bulkLine', `${repo}/pipeline/bulk/bulk-writer.ts`, 'mapping'],
    ['write', 'node:_http_outgoing', 'http'],
    ['onStreamRead', 'node:internal/stream_base_commons', 'http'],
    ['handle', `${repo}/node_modules/@smithy/node-http-handler/dist-cjs/index.js`, 'http'],
    ['request', `${repo}/node_modules/@opensearch-project/opensearch/lib/Transport.js`, 'http'],
    ['commitReadyPages', `${repo}/pipeline/scan/scan-segment.ts`, 'pipeline'],
    ['runWorkflowLocally', `${repo}/local/workflow.ts`, 'pipeline'],
    ['compileSchema', `${repo}/node_modules/ajv/dist/compile/index.js`, 'workflow'],
    ['writev', '', 'http'],
    ['decode', '', 'json'],
    ['(program)', '', 'other'],
    ['load', `${repo}/node_modules/tsx/dist/esm/index.mjs`, 'other'],
  ])('%s in %s is %s', (functionName, url, part) => {
    expect(profilePart(functionName, url)).toBe(part);
  });
});

describe('splitProfile', () => {
  it("splits a real profile of the mapping and the answer decoding by the pipeline's own code", async () => {
    // Prepare: a Scan answer as DynamoDB sends it (the wire JSON of the benchmark's items).
    const items = [...benchItems(2_000)];
    const answer = JSON.stringify({ Items: items });

    // Act: what the backfill does with a page, under the profiler, long enough for many samples.
    const { result: documents, profile } = await profileWhile(async () => {
      let count = 0;
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        const page = JSON.parse(answer) as { Items: Record<string, unknown>[] };
        for (const wire of page.Items) {
          for (const document of mapItem(decodeWireItem(wire), BENCH_KEY_SCHEMA, { index: 'orders' })) {
            count += encodeDocument(document.document).length > 0 ? 1 : 0;
          }
        }
      }
      return count;
    });
    const split = splitProfile(profile);

    // Assess
    expect(documents).toBeGreaterThan(0);
    expect(split.busyMs.mapping).toBeGreaterThan(0);
    expect(split.busyMs.json).toBeGreaterThan(0);
    const busy = PROFILE_PARTS.reduce((sum, part) => sum + split.busyMs[part], 0);
    // The work was busy CPU for 1.5 s; the split accounts for it (samples every millisecond or so).
    expect(busy).toBeGreaterThan(1_000);
    const shares = PROFILE_PARTS.reduce((sum, part) => sum + split.sharePercent[part], 0);
    expect(shares).toBeGreaterThanOrEqual(97);
    expect(shares).toBeLessThanOrEqual(103);
    // The pipeline's mapping and its JSON reading and writing are found by their frames; so is the collector.
    expect(split.sharePercent.mapping).toBeGreaterThanOrEqual(5);
    expect(split.sharePercent.json).toBeGreaterThanOrEqual(5);
    expect(split.busyMs.gc).toBeGreaterThan(0);
    expect(split.idleMs).toBeLessThan(busy);
  });
});
