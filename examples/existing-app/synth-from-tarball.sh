#!/usr/bin/env bash
# `npm run example:synth` (CI runs it): packs ddb2os, installs the tarball into a temporary copy of
# this example as a user's app would install it from the registry, type-checks the app against the
# package's declarations, synthesizes it with cdk-nag's AwsSolutions pack (an unacknowledged finding
# fails the synth), and runs `npx ddb2os --help` from the installed package.
# Offline once npm's cache holds the example's dependencies (the project's own install put them
# there): --prefer-offline reads the cache, not the registry. The app's devDependencies (the CDK
# CLI, tsx, TypeScript) are not installed: the project's own run and check it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
example="$root/examples/existing-app"
work="$(mktemp -d "${TMPDIR:-/tmp}/ddb2os-example-XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS

cd "$root"
npm pack --silent --pack-destination "$work" >/dev/null   # prepack: npm run build
tarball="$(ls "$work"/ddb2os-*.tgz)"
echo "example: packed $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

mkdir "$work/app"
cp "$example/app.ts" "$example/cdk.json" "$example/package.json" "$example/tsconfig.json" "$work/app/"
cd "$work/app"
npm install --prefer-offline --no-audit --no-fund --omit=dev --loglevel=error "$tarball"
echo "example: installed the tarball and the app's dependencies"

# The declarations as a NodeNext app resolves them, and a wrong prop must be a type error: were the
# package's types unresolved (any), the @ts-expect-error below would itself be the error.
cat > type-check.ts <<'TS'
import { App, Stack } from 'aws-cdk-lib';
import { Table } from 'aws-cdk-lib/aws-dynamodb';
import { BackfillWorkflow, type BackfillWorkflowProps, type TransformHook } from 'ddb2os';

const stack = new Stack(new App(), 'TypeCheck');
const table = Table.fromTableName(stack, 'T', 't');
// @ts-expect-error index is required
const props: BackfillWorkflowProps = { table, domainEndpoint: 'https://d', domainArn: 'arn' };
const transform: TransformHook = (item, { defaultIndex }) => ({ index: defaultIndex, id: 'x', document: item });
export const used = [BackfillWorkflow, props, transform];
TS
node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json --typeRoots "$root/node_modules/@types"
echo "example: app.ts type-checks against the package's declarations"

CDK_OUTDIR="$work/cdk.out" node "$root/node_modules/tsx/dist/cli.mjs" app.ts
template="$work/cdk.out/ExistingApp.template.json"
# Each function's code is the package's prebuilt bundle, byte for byte: nothing was bundled at synth.
node --input-type=module - "$template" "$work/cdk.out" "$work/app/node_modules/ddb2os/dist/handlers" <<'JS'
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const [template, assembly, prebuilt] = process.argv.slice(2);
const resources = Object.values(JSON.parse(readFileSync(template, 'utf8')).Resources);
const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description?.startsWith('ddb2os:'));
if (functions.length < 4) throw new Error(`example: expected the workflow's functions, found ${functions.length}`);
// Every handler the package ships (plan, worker, updater, summarize, run-lock, resync, watchdog, deploy-guard).
const bundles = new Map(readdirSync(prebuilt).map((n) => [readFileSync(join(prebuilt, n, 'index.mjs'), 'utf8'), n]));
for (const fn of functions) {
  const code = readFileSync(join(assembly, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`, 'index.mjs'), 'utf8');
  if (!bundles.has(code)) throw new Error(`example: "${fn.Properties.Description}" is not a prebuilt bundle of the package`);
}
console.log(`example: synthesized ExistingApp with ${functions.length} ddb2os functions, each a prebuilt bundle; cdk-nag found nothing unacknowledged`);
JS

# With a transform module, the worker and the updater are bundled at synth around their prebuilt
# bundles (esbuild came with the package's tsx); the result must load in Node.js as Lambda loads it.
cat > order-transform.mjs <<'JS'
export default (item, { defaultIndex }) => ({ index: defaultIndex, id: item.orderId.S, document: { mappedBy: 'example transform' } });
JS
CDK_OUTDIR="$work/cdk.out.transform" CDK_CONTEXT_JSON='{"transformModule":"order-transform.mjs"}' \
  node "$root/node_modules/tsx/dist/cli.mjs" app.ts
ln -s "$work/app/node_modules" "$work/cdk.out.transform/node_modules"
node --input-type=module - "$work/cdk.out.transform" "$work/app/node_modules/ddb2os/dist/handlers" <<'JS'
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [assembly, prebuilt] = process.argv.slice(2);
const resources = Object.values(JSON.parse(readFileSync(join(assembly, 'ExistingApp.template.json'), 'utf8')).Resources);
const code = (name) => {
  const fn = resources.find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description?.startsWith(`ddb2os: ${name}`));
  return join(assembly, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/, '')}`, 'index.mjs');
};
const worker = code('scans');
const updater = code('applies');
for (const file of [worker, updater]) {
  if (!readFileSync(file, 'utf8').includes('example transform')) throw new Error(`example: ${file} lacks the transform`);
  const module = await import(pathToFileURL(file).href);
  if (typeof module.handler !== 'function') throw new Error(`example: ${file} exports no handler`);
}
if (readFileSync(code('plans'), 'utf8') !== readFileSync(join(prebuilt, 'plan', 'index.mjs'), 'utf8')) {
  throw new Error('example: with a transform, the plan function should still be the prebuilt bundle');
}
console.log('example: with -c transformModule, the worker and the updater hold the transform and load; plan is prebuilt');
JS

./node_modules/.bin/ddb2os --help >/dev/null
echo "example: npx ddb2os --help works from the installed package; done in $((SECONDS - started)) s"
