// Run by tap before any end-to-end test file (--before in package.json's
// test:e2e): record the machine's state, so the last file can prove the run
// left it as it was.

import { BASELINE_FILE, writeBaseline } from './state.js'

const state = await writeBaseline()
const present = Object.entries(state.paths)
  .filter(([, is]) => is)
  .map(([p]) => p)
console.log(`# e2e baseline in ${BASELINE_FILE}: ${state.mounts.length} mounts; present: ${present.join(', ') || 'none of the watched paths'}`)
