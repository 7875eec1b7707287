/**
 * The transform hook in the cloud. Locally, mapping.transformModule is a path
 * that the mapping imports at run time; a Lambda function holds only its
 * bundle, so the path would point at nothing. Instead, at synth, each function
 * that maps items gets a generated entry file that imports the user's module
 * statically, registers its exports (pipeline/mapping/bundled-transform.ts) and
 * re-exports the handler; esbuild then bundles the module and whatever it
 * imports into that function. The functions' DDB2OS_MAPPING still names the
 * module, and the handler checks at cold start that it is the one bundled.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { buildSync, type Message } from 'esbuild';
import { type HandlerName, PROJECT_ROOT } from './handler-function';

/** A transform module checked at synth: the path as the user gave it, and the file it names. */
export interface TransformModule {
  /** As given (prop or `-c transformModule=`); the functions' DDB2OS_MAPPING names it so. */
  readonly source: string;
  readonly absolutePath: string;
}

/**
 * Generated entries live under the project root because NodejsFunction bundles
 * only entries below it, and in a fixed place so that the same inputs give the
 * same bundle (and the same asset hash). cdk.out is ignored by git, Biome and tsc.
 * A function, not a constant: handler-function.ts and this module import each other.
 */
function entryDir(): string {
  return join(PROJECT_ROOT, 'cdk.out', '.transform-entries');
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
 * Writes the entry of `handler` with `module` bundled in, and returns its path.
 * The file name is the hash of its content, so parallel synths of the same
 * function write the same file, and different ones never share a file.
 */
export function transformEntry(handler: HandlerName, handlerPath: string, module: TransformModule): string {
  const content = [
    `// Generated at synth by ddb2os (stacks/transform-bundle.ts): the ${handler} handler with its transform module.`,
    `import * as transformModule from ${specifier(module.absolutePath)};`,
    `import { registerBundledTransform } from ${specifier(join(PROJECT_ROOT, 'pipeline', 'mapping', 'bundled-transform.ts'))};`,
    `registerBundledTransform(${JSON.stringify(module.source)}, transformModule);`,
    `export { handler } from ${specifier(handlerPath)};`,
    '',
  ].join('\n');
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  const path = join(entryDir(), `${handler}-${hash}.mjs`);
  if (!existsSync(path)) {
    mkdirSync(entryDir(), { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, content);
    renameSync(temporary, path);
  }
  return path;
}

/** Relative to the entry, so that the bundle does not depend on where the project is checked out. */
function specifier(path: string): string {
  const relativePath = relative(entryDir(), path).split(sep).join('/');
  return JSON.stringify(relativePath.startsWith('.') ? relativePath : `./${relativePath}`);
}

function describeMessage(message: Message): string {
  // esbuild names files relative to the working directory; absolute reads the same from anywhere.
  const where = message.location
    ? `${resolve(message.location.file)}:${message.location.line}:${message.location.column}: `
    : '';
  return `${where}${message.text}`;
}
