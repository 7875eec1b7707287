/**
 * The one item classifier, on answers the real OpenSearch gives (their status and error type as
 * OpenSearch 2.19 sends them). A pure function: no engine needed to read an answer.
 */
import { describe, expect, it } from 'vitest';
import { classifyItem } from '../../../pipeline/bulk/bulk-writer';

const missingIndex = {
  status: 404,
  error: { type: 'index_not_found_exception', reason: 'no such index [orders]' },
} as never;

describe('classifyItem', () => {
  it('retries a write whose index vanished for a moment (an alias swap), so no item is dead-lettered for it', () => {
    expect(classifyItem('index', missingIndex)).toBe('retry');
    expect(classifyItem('create', missingIndex)).toBe('retry');
  });

  it('still takes a delete in a missing index as done: the document is not there either way', () => {
    expect(classifyItem('delete', missingIndex)).toBe('not_found');
  });

  it('refuses a document the mapping rejects', () => {
    const rejected = { status: 400, error: { type: 'mapper_parsing_exception', reason: 'failed to parse' } };
    expect(classifyItem('index', rejected as never)).toBe('refused');
  });
});
