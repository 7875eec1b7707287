// Runs before `npm start` and `npm test`: on a fresh clone, installs the npm
// packages first (plain Node, no dependency), so the Quick start is two commands.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const marker = 'node_modules/.package-lock.json';
const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync('package-lock.json').mtimeMs;
if (stale) {
  console.error('ddb2os: installing npm packages (npm install, from package-lock.json)…');
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
