/**
 * The local runner builds its state machine without validating the
 * definition on every run (localStateMachine: the validation cost a local
 * backfill half a second before its first Scan). This is the check it relies
 * on: the definition, filled as a local run fills it, passes the
 * aws-local-stepfunctions validator.
 */
import { StateMachine } from 'aws-local-stepfunctions';
import { describe, expect, it } from 'vitest';
import { localDefinition } from '../../local/workflow';

describe('localDefinition', () => {
  it('is valid for the aws-local-stepfunctions validator as a local run fills it', () => {
    const definition = localDefinition({ table: 'orders', index: 'orders-v1' });

    expect(
      () => new StateMachine(definition as never, { validationOptions: { checkArn: false } }),
    ).not.toThrow();
    expect(definition.StartAt).toBeTypeOf('string');
  });

  it('keeps its structure whatever index definition a run substitutes (quotes, braces, nesting)', () => {
    const plain = localDefinition({ table: 'orders', index: 'orders-v1' });
    const indexConfig = {
      source: 'index config file "odd {name}".json',
      settings: { number_of_shards: 2, 'analysis.analyzer.a.type': 'custom' },
      mappings: { properties: { title: { type: 'text', fields: { raw: { type: 'keyword' } } } } },
    };

    const filled = localDefinition({ table: 'orders', index: 'orders-v1', indexConfig });

    // Only the substituted string differs: the same states, in the same places. (Compared before the
    // validator sees a copy: it annotates the definition it is given.)
    const shape = (value: unknown): unknown =>
      typeof value === 'string'
        ? 'string'
        : Array.isArray(value)
          ? value.map(shape)
          : value && typeof value === 'object'
            ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, shape(inner)]))
            : value;
    expect(shape(filled)).toEqual(shape(plain));
    expect(() => new StateMachine(filled as never, { validationOptions: { checkArn: false } })).not.toThrow();
    expect(JSON.stringify(filled)).toContain('odd {name}');
  });
});
