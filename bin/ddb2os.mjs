#!/usr/bin/env node
// The `ddb2os` command. In a checkout it runs the TypeScript CLI through tsx (no build step); the
// installed package has no TypeScript sources, only the CLI that `npm run build` bundled into dist/.
// tsx is registered either way, so that a mapping's transform module may be TypeScript.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every run under Node 20 that its releases after January 2027 need Node 22;
// the README says so once instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const inCheckout = existsSync(new URL('../cli/main.ts', import.meta.url));
// The heap limit is set before the commands' modules load; in the package they are one bundle, whose
// loading allocates little next to a backfill.
const { limitHeapGrowth } = inCheckout
  ? await import('../local/heap.ts')
  : await import('../dist/cli/main.js');
limitHeapGrowth();
const { main } = inCheckout ? await import('../cli/main.ts') : await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
