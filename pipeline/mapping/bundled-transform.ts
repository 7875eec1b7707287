/**
 * The transform module a deployed function carries in its own bundle. A
 * Lambda cannot import the path that mapping.transformModule names (the file
 * is not in the deployment package), so at synth BackfillWorkflow bundles the
 * module into each function that maps items, behind a generated entry that
 * registers the module's exports here before the handler's first event
 * (stacks/transform-bundle.ts). loadMappingConfig reads them back.
 */

/** A module as `import * as` sees it, and the path it was named by (mapping.transformModule). */
export interface BundledTransformModule {
  source: string;
  exports: Record<string, unknown>;
}

let bundled: BundledTransformModule | undefined;

/** Called once by a generated entry, at module evaluation, before the handler runs. */
export function registerBundledTransform(source: string, exports: Record<string, unknown>): void {
  bundled = { source, exports };
}

/** The module bundled into this function, if any. */
export function bundledTransformModule(): BundledTransformModule | undefined {
  return bundled;
}
