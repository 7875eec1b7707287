#!/usr/bin/env node
// The `ddb2os` command: loads the TypeScript CLI through tsx (no build step).
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every run under Node 20 that its releases after January 2027 need Node 22;
// the README says so once instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { limitHeapGrowth } = await import('../local/heap.ts');
limitHeapGrowth();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
