/**
 * The transform hook in the cloud. Locally, mapping.transformModule is a path
 * that the mapping imports at run time; a Lambda function holds only its
 * bundle, so the path would point at nothing. Instead, at synth, each function
 * that maps items is bundled from a generated entry that imports the user's
 * module statically, registers its exports (pipeline/mapping/bundled-transform.ts)
 * and re-exports the handler; esbuild then bundles the module and whatever it
 * imports into that function. In a checkout the entry imports the handler's
 * source; in the installed package, its prebuilt bundle, which exports
 * registerBundledTransform for this (handler-bundle.ts). Either way esbuild
 * runs at synth, so a transform needs esbuild in the user's app. The
 * functions' DDB2OS_MAPPING still names the module, and the handler checks at
 * cold start that it is the one bundled.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Message } from 'esbuild';
import {
  handlerSourcePath,
  loadEsbuild,
  PACKAGE_ROOT,
  prebuiltHandlerDir,
  specifier,
} from './handler-bundle';

/** A transform module checked at synth: the path as the user gave it, and the file it names. */
export interface TransformModule {
  /** As given (prop or `-c transformModule=`); the functions' DDB2OS_MAPPING names it so. */
  readonly source: string;
  readonly absolutePath: string;
}

/**
 * Checks a transform module at synth (resolved against the working directory):
 * the file exists, esbuild can bundle it as the functions will, and it exports
 * `default` or `transform`. Each error names the prop and the file; whether the
 * export is a function only the cold start can tell.
 */
export function checkTransformModule(source: string): TransformModule {
  const absolutePath = resolve(source);
  if (!existsSync(absolutePath) || !statSync(absolutePath).isFile()) {
    throw new Error(
      `BackfillWorkflow: transformModule ${source} is not a file (resolved to ${absolutePath}).`,
    );
  }
  const { buildSync } = loadEsbuild(`transformModule ${source}`);
  let exports: string[];
  try {
    const result = buildSync({
      entryPoints: [absolutePath],
      outfile: 'transform.mjs',
      write: false,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      mainFields: ['module', 'main'],
      // As in the functions' bundles: the Lambda runtime provides the AWS SDK.
      external: ['@aws-sdk/*'],
      metafile: true,
      logLevel: 'silent',
    });
    exports = Object.values(result.metafile.outputs).flatMap((output) => output.exports);
  } catch (error) {
    const messages = ((error as { errors?: Message[] }).errors ?? []).map(describeMessage);
    throw new Error(
      `BackfillWorkflow: transformModule ${source} cannot be bundled: ${
        messages.length > 0 ? messages.join('; ') : (error as Error).message
      }.`,
      { cause: error },
    );
  }
  if (!exports.includes('default') && !exports.includes('transform')) {
    throw new Error(
      `BackfillWorkflow: transformModule ${source} exports neither a default function nor a function named ` +
        `transform (its exports: ${exports.length > 0 ? exports.join(', ') : 'none'}).`,
    );
  }
  return { source, absolutePath };
}

/**
 * The entry of `handlerName`'s bundle with `module` in it: module text that
 * bundleHandler resolves from the package root.
 */
export function transformEntry(handlerName: string, module: TransformModule): string {
  const source = handlerSourcePath(handlerName);
  const [handlerModule, registerModule] = existsSync(source)
    ? [source, join(PACKAGE_ROOT, 'pipeline', 'mapping', 'bundled-transform.ts')]
    : Array(2).fill(join(prebuiltHandlerDir(handlerName), 'index.mjs'));
  return [
    `// Generated at synth by ddb2os (stacks/transform-bundle.ts): the ${handlerName} handler with its transform module.`,
    `import * as transformModule from ${specifier(module.absolutePath)};`,
    `import { registerBundledTransform } from ${specifier(registerModule)};`,
    `registerBundledTransform(${JSON.stringify(module.source)}, transformModule);`,
    `export { handler } from ${specifier(handlerModule)};`,
    '',
  ].join('\n');
}

function describeMessage(message: Message): string {
  // esbuild names files relative to the working directory; absolute reads the same from anywhere.
  const where = message.location
    ? `${resolve(message.location.file)}:${message.location.line}:${message.location.column}: `
    : '';
  return `${where}${message.text}`;
}
