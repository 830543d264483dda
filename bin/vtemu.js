#!/usr/bin/env node
// The vtemu command: runs the compiled CLI (npm run build produces dist/).
import { main } from '../dist/src/cli.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`vtemu: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
