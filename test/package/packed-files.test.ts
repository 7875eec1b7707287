/**
 * The package as `npm pack` makes it (issue 17): what a user's CDK app and
 * `npx ddb2os` get. It is built here (`npm run build`) and listed with
 * `npm pack --dry-run`. That the packed tarball installs, type-checks and
 * synthesizes in an app of its own is examples/existing-app/synth-from-tarball.sh
 * (`npm run example:synth`, run by CI): installing aws-cdk-lib takes longer
 * than a test should.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../stacks/handler-bundle';

const run = promisify(execFile);

interface PackedPackage {
  files: { path: string }[];
}

/** Every Lambda handler, as the build finds them: a new handler file must ship too. */
const HANDLERS = readdirSync(join(PACKAGE_ROOT, 'handlers'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.replace(/\.ts$/, ''));

describe('the packed ddb2os package', () => {
  let files: string[];

  beforeAll(async () => {
    await run('npm', ['run', 'build'], { cwd: PACKAGE_ROOT, maxBuffer: 16 * 1024 * 1024 });
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: PACKAGE_ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
    files = (JSON.parse(stdout) as PackedPackage[])[0]!.files.map((file) => file.path);
  }, 600_000);

  it("holds each handler's prebuilt bundle and its source map", () => {
    expect(HANDLERS).toEqual(expect.arrayContaining(['plan', 'worker', 'updater', 'summarize']));
    for (const handler of HANDLERS) {
      expect(files).toContain(`dist/handlers/${handler}/index.mjs`);
      expect(files).toContain(`dist/handlers/${handler}/index.mjs.map`);
    }
  });

  it('holds the library with its declarations, the CLI and what they read at run time', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'dist/lib/index.js',
        'dist/types/lib/index.d.ts',
        'dist/types/stacks/backfill-workflow-props.d.ts',
        'dist/cli/main.js',
        'bin/ddb2os.mjs',
        'statemachines/backfill.asl.json',
        'engines/pom.xml',
      ]),
    );
  });

  it('holds no tests, no TypeScript sources and no source map other than the handlers', () => {
    expect(files.filter((path) => path.startsWith('test/') || /\.test\.|fixture/.test(path))).toEqual([]);
    expect(files.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
    expect(
      files.filter((path) => path.endsWith('.map') && !/^dist\/handlers\/[^/]+\/index\.mjs\.map$/.test(path)),
    ).toEqual([]);
  });

  it("maps the handlers' code to the project's sources only, never to a test", () => {
    for (const handler of HANDLERS) {
      const map = JSON.parse(
        readFileSync(join(PACKAGE_ROOT, 'dist/handlers', handler, 'index.mjs.map'), 'utf8'),
      );
      const own = (map.sources as string[]).filter((source) => !source.includes('node_modules/'));
      expect(own.filter((source) => !/^\.\.\/\.\.\/\.\.\/(handlers|pipeline)\//.test(source))).toEqual([]);
    }
  });

  it('is public, with an exports map, types and the ddb2os command', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8'));
    expect(manifest.private).toBeUndefined();
    expect(manifest.name).toBe('ddb2os');
    expect(manifest.exports['.']).toEqual({
      types: './dist/types/lib/index.d.ts',
      import: './dist/lib/index.js',
    });
    expect(manifest.bin).toEqual({ ddb2os: 'bin/ddb2os.mjs' });
  });

  it('loads the library without esbuild, cdk-nag or tsx: none is imported by its bundle', () => {
    const library = readFileSync(join(PACKAGE_ROOT, 'dist/lib/index.js'), 'utf8');
    const imported = [...library.matchAll(/^import .* from "([^"]+)";$/gm)].map((match) => match[1]);
    expect(imported.filter((name) => /^(esbuild|cdk-nag|tsx)(\/|$)/.test(name!))).toEqual([]);
    expect(imported.length).toBeGreaterThan(0);
  });
});
