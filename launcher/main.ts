#!/usr/bin/env node
// hostshim's entry point: wire the CLI to the real process.
// No top-level await: the same file is the entry of the CommonJS bundle that
// the single executable runs (build/bundle.mjs, build/sea.mjs).

import { main } from './cli.js'

void main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
}).then((code) => {
  process.exitCode = code
})
