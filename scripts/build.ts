/**
 * `npm run build`: the package as users install it, in dist/.
 *
 * - dist/handlers/<name>/index.mjs: each Lambda handler, bundled as the
 *   construct bundles it in a checkout (stacks/handler-bundle.ts), so synth in
 *   a user's app only points assets at these folders.
 * - dist/lib/index.js: the library (lib/index.ts), one ESM file; its
 *   dependencies stay imports.
 * - dist/cli/main.js: the `ddb2os` command's code, loaded by bin/ddb2os.mjs.
 * - dist/types/: the declarations of the library.
 *
 * The two bundles sit two folders below the package root, as their sources
 * do (stacks/…, cli/…, local/engines/…, pipeline/contract/…): the modules that
 * find package files from their own URL (statemachines/, engines/pom.xml) then
 * find them from the bundles too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { bundleHandler, handlerEntry, PACKAGE_ROOT, PREBUILT_HANDLERS_DIR } from '../stacks/handler-bundle';

const DIST = join(PACKAGE_ROOT, 'dist');
const started = Date.now();
rmSync(DIST, { recursive: true, force: true });

const handlerNames = readdirSync(join(PACKAGE_ROOT, 'handlers'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.replace(/\.ts$/, ''));
for (const name of handlerNames) bundleHandler(name, handlerEntry(name), join(PREBUILT_HANDLERS_DIR, name));

/** A bundle that runs in Node.js from the installed package, its npm dependencies imported, not inlined. */
async function bundlePackageModule(entry: string, outfile: string): Promise<void> {
  await build({
    stdin: { contents: entry, resolveDir: PACKAGE_ROOT, sourcefile: relative(DIST, outfile), loader: 'ts' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'warning',
    plugins: [withoutSideEffects(['cdk-nag'])],
  });
}

/**
 * Lets esbuild drop an import of `packages` that nothing in the bundle uses:
 * stacks/nag.ts imports cdk-nag for the rule packs that only stacks/app.ts
 * runs, and the library (which only acknowledges findings, through
 * aws-cdk-lib) must load without cdk-nag installed.
 */
function withoutSideEffects(packages: string[]): Plugin {
  return {
    name: 'without-side-effects',
    setup(build) {
      const filter = new RegExp(`^(${packages.map((name) => name.replace(/[-/]/g, '\\$&')).join('|')})$`);
      build.onResolve({ filter }, (args) => ({ path: args.path, external: true, sideEffects: false }));
    },
  };
}
await bundlePackageModule("export * from './lib/index.ts';", join(DIST, 'lib', 'index.js'));
await bundlePackageModule(
  "export { limitHeapGrowth } from './local/heap.ts';\nexport { main } from './cli/main.ts';",
  join(DIST, 'cli', 'main.js'),
);

execFileSync(
  process.execPath,
  [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: PACKAGE_ROOT,
    stdio: 'inherit',
  },
);
addDeclarationExtensions(join(DIST, 'types'));

console.log(
  `dist/: ${handlerNames.length} handler bundles (${handlerNames.join(', ')}), the library, the CLI and ` +
    `declarations in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);

/**
 * tsc writes the specifiers as the sources do (`'./backfill-workflow'`); Node's
 * ESM resolution, which a consumer's TypeScript applies under
 * `moduleResolution: node16/nodenext`, needs the file named. So each relative
 * specifier gets the `.js` of the declaration file it points at.
 */
function addDeclarationExtensions(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      addDeclarationExtensions(path);
      continue;
    }
    if (!entry.name.endsWith('.d.ts')) continue;
    const text = readFileSync(path, 'utf8').replace(
      /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*)\2/g,
      (whole, before: string, quote: string, specifier: string) => {
        if (specifier.endsWith('.js')) return whole;
        const target = join(dirname(path), specifier);
        if (existsSync(`${target}.d.ts`)) return `${before}${quote}${specifier}.js${quote}`;
        if (existsSync(join(target, 'index.d.ts'))) return `${before}${quote}${specifier}/index.js${quote}`;
        throw new Error(`build: ${path} imports ${specifier}, which has no declaration file.`);
      },
    );
    writeFileSync(path, text);
  }
}
