import { Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * Runs the cdk-nag AwsSolutions and Serverless packs on everything under
 * `scope` (an App or Stage) at synth time. cdk-nag 3 reports through CDK's
 * policy validation: an unacknowledged error fails the synth.
 */
export function applyNagChecks(scope: IConstruct): void {
  Validations.of(scope).addPlugins(
    new AwsSolutionsChecks(scope, { verbose: true }),
    new ServerlessChecks(scope, { verbose: true }),
  );
}

/** The nag packs the app runs, for tests that validate a stack directly. */
export function nagPacks(scope: IConstruct): (AwsSolutionsChecks | ServerlessChecks)[] {
  return [new AwsSolutionsChecks(scope, { verbose: true }), new ServerlessChecks(scope, { verbose: true })];
}

/** Acknowledges cdk-nag findings (full ids, e.g. `AwsSolutions-IAM5[Resource::*]`) on a construct and its children. */
export function acknowledge(scope: IConstruct, ids: string[], reason: string): void {
  Validations.of(scope).acknowledge(...ids.map((id) => ({ id, reason })));
}

/**
 * The id of the AwsSolutions-IAM5 finding for a wildcard resource, as cdk-nag
 * writes it: CloudFormation references flattened to `<Logical.Attr>`, `<Ref>`.
 */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenReference(Stack.of(scope).resolve(resource))}]`;
}

function flattenReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const value = node as Record<string, unknown>;
    if (Array.isArray(value['Fn::Join'])) {
      const [delimiter, items] = value['Fn::Join'] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if ('Fn::Sub' in value) return flattenReference(value['Fn::Sub']);
    if (Array.isArray(value['Fn::GetAtt'])) {
      const [resource, attribute] = value['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if ('Fn::ImportValue' in value) return flattenReference(value['Fn::ImportValue']);
    if ('Ref' in value) return `<${flattenReference(value.Ref)}>`;
  }
  return JSON.stringify(node);
}
