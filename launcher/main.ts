#!/usr/bin/env node
// hostshim's entry point: wire the CLI to the real process.

import { main } from './cli.js'

const code = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
})
process.exitCode = code
