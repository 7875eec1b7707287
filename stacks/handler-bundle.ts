/**
 * Where a function's code comes from, in the two places this module runs.
 *
 * - In a checkout (tests, `cdk synth` here) the handlers are TypeScript under
 *   `handlers/`, bundled at synth, so a change is deployed without a build step.
 * - In the installed package (a user's CDK app) there is no source: `npm run
 *   build` bundled each handler into `dist/handlers/<name>/`, and synth only
 *   points an asset at that folder. No esbuild, no tsx, no network.
 *
 * Both bundle with the same esbuild options (handlerBuildOptions), here and
 * nowhere else, and from the same entry: the handler plus
 * registerBundledTransform, so that a transform module can be bundled at
 * synth around a prebuilt handler (transform-bundle.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';

/**
 * The package root: the nearest folder above this module with a package.json.
 * A walk rather than a fixed `..`, because this module runs from `stacks/` in
 * a checkout and from the library bundle in `dist/lib/` once installed.
 */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`ddb2os: no package.json above ${start}.`);
  }
}

/** Prebuilt handler bundles in the package: `dist/handlers/<name>/index.mjs`. */
export const PREBUILT_HANDLERS_DIR = join(PACKAGE_ROOT, 'dist', 'handlers');

/** The handler's TypeScript source; present in a checkout, absent from the installed package. */
export function handlerSourcePath(handlerName: string): string {
  return join(PACKAGE_ROOT, 'handlers', `${handlerName}.ts`);
}

/** The prebuilt bundle's folder, the asset of the function in the installed package. */
export function prebuiltHandlerDir(handlerName: string): string {
  return join(PREBUILT_HANDLERS_DIR, handlerName);
}

/**
 * The esbuild API, loaded only when something is bundled: the installed package runs without it.
 * @internal
 */
export function loadEsbuild(purpose: string): typeof import('esbuild') {
  try {
    return createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  } catch (error) {
    throw new Error(
      `BackfillWorkflow: ${purpose} needs esbuild at synth, and it cannot be loaded; add it to your app ` +
        '(npm install --save-dev esbuild).',
      { cause: error },
    );
  }
}

/**
 * The one set of esbuild options for a Lambda bundle: minified ESM for
 * Node.js 22 with a source map, the AWS SDK left to the Lambda runtime.
 * `outfile` is where the bundle would sit in the package, whatever folder it
 * is written to, so the source map's paths do not depend on that folder.
 * @internal
 */
export function handlerBuildOptions(handlerName: string): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify: true,
    sourcemap: true,
    // Some dependencies are CommonJS and call require(); an ESM bundle needs it defined. Without an
    // import statement, so that a prebuilt bundle bundled again (with a transform) does not declare
    // createRequire twice: esbuild renames the inner `require`, not text in a banner.
    banner: { js: "const require = process.getBuiltinModule('module').createRequire(import.meta.url);" },
    mainFields: ['module', 'main'],
    external: ['@aws-sdk/*'],
    outfile: join(prebuiltHandlerDir(handlerName), 'index.mjs'),
    logLevel: 'silent',
  };
}

/** The entry of a handler's bundle: the handler, and the hook a transform entry registers through. */
export function handlerEntry(handlerName: string): string {
  return [
    `export { handler } from ${specifier(handlerSourcePath(handlerName))};`,
    `export { registerBundledTransform } from ${specifier(join(PACKAGE_ROOT, 'pipeline', 'mapping', 'bundled-transform.ts'))};`,
    '',
  ].join('\n');
}

/** An import specifier for `path` from the package root, where bundle entries resolve. */
export function specifier(path: string): string {
  const relativePath = relative(PACKAGE_ROOT, path).split('\\').join('/');
  return JSON.stringify(relativePath.startsWith('.') ? relativePath : `./${relativePath}`);
}

/**
 * Bundles `entry` (module text resolved from the package root) into `outdir`,
 * or, without one, into a folder under the system's temporary folder named
 * by the bundle's hash: the same code gives the same folder, so parallel and
 * repeated synths share it and the asset hash stays put. Returns the folder.
 */
export function bundleHandler(handlerName: string, entry: string, outdir?: string): string {
  const key = `${handlerName}\0${entry}`;
  const bundled = outdir === undefined ? bundledThisProcess.get(key) : undefined;
  if (bundled !== undefined && existsSync(bundled)) return bundled;
  const folder = writeBundle(handlerName, entry, outdir);
  if (outdir === undefined) bundledThisProcess.set(key, folder);
  return folder;
}

/**
 * Bundles already written by this process, by handler and entry: an app (or
 * a test file) that builds many workflows bundles each handler once, as CDK's
 * asset cache did for NodejsFunction. Sources do not change during a synth.
 */
const bundledThisProcess = new Map<string, string>();

function writeBundle(handlerName: string, entry: string, outdir: string | undefined): string {
  const esbuild = loadEsbuild(`bundling the ${handlerName} handler`);
  const options = handlerBuildOptions(handlerName);
  let result: import('esbuild').BuildResult<{ write: false }>;
  try {
    result = esbuild.buildSync({
      ...options,
      stdin: {
        contents: entry,
        resolveDir: PACKAGE_ROOT,
        sourcefile: `${handlerName}-entry.mjs`,
        loader: 'js',
      },
      write: false,
    });
  } catch (error) {
    const messages = ((error as { errors?: import('esbuild').Message[] }).errors ?? []).map((m) => m.text);
    throw new Error(
      `BackfillWorkflow: the ${handlerName} handler cannot be bundled: ${messages.join('; ') || (error as Error).message}.`,
      { cause: error },
    );
  }
  const hash = createHash('sha256');
  for (const file of result.outputFiles) hash.update(basename(file.path)).update(file.contents);
  const target =
    outdir ?? join(tmpdir(), 'ddb2os-handlers', `${handlerName}-${hash.digest('hex').slice(0, 16)}`);
  if (outdir === undefined && existsSync(target)) return target;
  const staging = `${target}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  for (const file of result.outputFiles) writeFileSync(join(staging, basename(file.path)), file.contents);
  if (outdir !== undefined) rmSync(target, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  try {
    renameSync(staging, target);
  } catch (error) {
    // Another synth wrote the same bundle first: its folder holds the same files.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(target)) throw error;
  }
  return target;
}
