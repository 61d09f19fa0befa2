#!/usr/bin/env node
// hostshim's entry point: wire the CLI to the real process.
// No top-level await: the same file is the entry of the CommonJS bundle that
// the single executable runs (build/bundle.mjs, build/sea.mjs).

import { main } from './cli.js'

// A reader that stops early (`hostshim render | head`) closes the pipe: the
// output was not wanted, which is not an error to report with a stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error
    process.exit(process.exitCode ?? 0)
  })
}

void main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
}).then((code) => {
  process.exitCode = code
})
