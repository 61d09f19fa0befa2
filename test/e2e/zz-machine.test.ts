// The end of the run (`npm run test:e2e` runs the files one at a time, in
// name order, so this one is last): the machine is as the baseline recorded
// before the first file (test/e2e/lib/baseline.ts) found it. No /run/host,
// nothing mounted below the temp dirs or the tree cache, podman-toolbox
// installed only if it was, no podman state in global places, no temp dir of
// ours left.

import { existsSync, lstatSync, readdirSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import t from 'tap'
import { CACHE_DIR } from './lib/debian.js'
import { BASELINE_FILE, differences, mountsInTestDirs, otherMountChanges, readBaseline, snapshot } from './lib/state.js'
import { TOOLBOX_PACKAGE } from './lib/toolbox.js'

const baseline = readBaseline()
const now = await snapshot()

t.test('the machine is as it was before the run', async (t) => {
  if (!baseline) t.comment(`no baseline at ${BASELINE_FILE} (run through \`npm run test:e2e\` to get one): checking absolutes only`)
  const hadRunHost = baseline?.paths['/run/host'] ?? false
  let runHost = false
  try {
    lstatSync('/run/host')
    runHost = true
  } catch {
    // absent: as it should be
  }
  t.equal(runHost, hadRunHost, hadRunHost ? '/run/host is still there, as before the run' : 'no /run/host')
  t.same(mountsInTestDirs(), [], `no mount below /tmp or ${CACHE_DIR}`)
  const wasInstalled = baseline?.packages[TOOLBOX_PACKAGE] ?? false
  t.equal(now.packages[TOOLBOX_PACKAGE], wasInstalled, `${TOOLBOX_PACKAGE} ${wasInstalled ? 'still' : 'not'} installed`)
  const leftovers = readdirSync('/tmp').filter((n) => n.startsWith('hostshim-e2e-'))
  t.same(leftovers, [], 'no /tmp/hostshim-e2e-* directory left')
  if (baseline) {
    t.same(differences(baseline, now), [], 'mounts in the test places and the watched paths as in the baseline')
    for (const c of otherMountChanges(baseline, now)) t.comment(`not ours, but seen on this machine during the run: ${c}`)
  } else {
    for (const p of ['/run/runc', '/run/containers', '/var/lib/containers'] as const) {
      t.comment(`${p}: ${now.paths[p] ? 'present' : 'absent'}`)
    }
  }
})

t.teardown(async () => {
  if (existsSync(BASELINE_FILE)) await rm(BASELINE_FILE)
})
