// Checks on one file, use of another: the host tree changes while the shim
// runs, between its checks of a file and its use of it. test/lib/race.ts
// traces the shim and renames a prepared file over the target or the loader
// at each of the shim's system calls in turn, deterministically. Whatever
// the moment, the run ends as the shim's own refusal (126 or 127 and one
// "NAME: ..." line) or as the program's own run: never a crash (a loader
// truncated after its size was taken: SIGBUS in the bss memset), never the
// container's file (a link to it swapped in after the walk and followed by
// an open or an execve of the path).
//
// Not covered, and not claimed (shim/README.md, section 7): the host loader
// opens the target by its path again, after the shim is gone.

import { readFileSync } from 'node:fs'
import { copyFile, writeFile } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import type { ShimMode } from '../../launcher/config.js'
import { CC, CONTAINER_ENV, assertNoStrayMounts, makeBusyboxRoot, runInContainer } from '../lib/container.js'
import { DEB_DIR, buildTree, copyRealFiles, workingHost } from '../lib/hosttree.js'
import { buildRace, parseRace } from '../lib/race.js'
import { COMPILE_TIMEOUT_MS, MODES, buildShim, suiteScratch } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 2 * MODES.length + 600_000)

const scratch = await suiteScratch(t, 'race')
const real = copyRealFiles(join(scratch, 'real'))
const root = await makeBusyboxRoot(join(scratch, 'root'))
await copyFile(await buildRace(scratch), join(root, 'usr/bin/race'))
// The container's own file: a static program that says so.
const MARKER = "the container's file"
await writeFile(join(scratch, 'marker.c'), `#include <stdio.h>\nint main(void) { puts("${MARKER.replace("'", "\\'")}"); return 42; }\n`)
const cc = spawnSync(CC, ['-static', '-O1', '-o', join(root, 'marker'), join(scratch, 'marker.c')], { encoding: 'utf8' })
if (cc.status !== 0) throw new Error(`cc: ${cc.stderr}`)

const LOADER = `${DEB_DIR}/ld-linux-x86-64.so.2`
const loaderBytes = readFileSync(real.loader)
const tree = buildTree(join(scratch, 'host'), {
  ...workingHost(real),
  '/usr/bin/toolbox.orig': { hardlink: real.true },
  '/usr/bin/toolbox.0644': { file: readFileSync(real.true), mode: 0o644 },
  [`${LOADER}.orig`]: { hardlink: real.loader },
  // Headers and program headers whole, the segments past the end: map_loader() must see the new size.
  [`${LOADER}.short`]: { file: loaderBytes.subarray(0, 8192), mode: 0o755 },
  [`${LOADER}.link`]: { link: '/marker' },
  '/usr/bin/static': { hardlink: real.busybox },
  '/usr/bin/static.orig': { hardlink: real.busybox },
  '/usr/bin/static.link': { link: '/marker' },
  '/usr/bin/static.0644': { file: readFileSync(real.busybox), mode: 0o644 },
})

const SCENARIOS = [
  { shim: 'toolbox', path: '/usr/bin/toolbox', swap: '0644', what: 'the target replaced by a copy without the exec bit' },
  // Chainload mode only: exec mode hands the file to the kernel, and a truncated loader dies in it as it would run directly.
  { shim: 'toolbox', path: LOADER, swap: 'short', what: 'the loader replaced by a truncated copy', only: 'chainload' },
  { shim: 'toolbox', path: LOADER, swap: 'link', what: 'the loader replaced by a link to the container\'s file' },
  { shim: 'static', path: '/usr/bin/static', swap: 'link', what: 'a static target replaced by a link to the container\'s file' },
  { shim: 'static', path: '/usr/bin/static', swap: '0644', what: 'a static target replaced by a copy without the exec bit' },
] as const

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const shims = {
      toolbox: await buildShim({ name: 'toolbox', target: '/usr/bin/toolbox' }, mode as ShimMode),
      static: await buildShim({ name: 'static', target: '/usr/bin/static' }, mode as ShimMode),
    }
    for (const s of SCENARIOS) {
      if ('only' in s && s.only !== mode) continue
      t.test(`${s.what}, at each system call of the shim`, async (t) => {
        const inRoot = (p: string) => `/run/host${p}`
        const r = runInContainer({
          root,
          host: tree,
          binds: [
            [tree, '/run/host', 'rw'],
            [shims[s.shim], `/usr/bin/${s.shim}`, 'ro'],
          ],
          argv: ['/usr/bin/race', inRoot(`${s.path}.orig`), inRoot(`${s.path}.${s.swap}`), inRoot(s.path), '200', '--', `/usr/bin/${s.shim}`],
          env: { ...CONTAINER_ENV },
        })
        t.equal(r.status, 0, `race ran: ${r.stderr.toString('latin1').slice(-500)}`)
        const { runs, calls } = parseRace(r.stdout)
        t.ok(calls > 5, `an undisturbed run makes ${calls} system calls`)
        const own = s.shim === 'toolbox' ? '' : 'static: applet not found\n'
        const ownStatus = s.shim === 'toolbox' ? 0 : 127
        let refused = 0
        let bad = 0
        for (const run of runs) {
          const out = run.output.toString('latin1')
          const ran = 'exit' in run.ending && run.ending.exit === ownStatus && out === own
          const message = 'exit' in run.ending && (run.ending.exit === 126 || run.ending.exit === 127) && new RegExp(`^${s.shim}: [^\\n]*\\n$`).test(out)
          if (message) refused++
          if (!ran && !message && bad++ < 5) t.fail(`swapped at system call ${run.at}: ${JSON.stringify(run.ending)}, output ${JSON.stringify(out)}`)
        }
        t.equal(bad, 0, `${runs.length} runs: each the program's own run or the shim's one-line refusal`)
        t.ok(runs.length >= Math.min(calls, 200), 'a run for each system call')
        if (s.swap !== '0644' || s.shim === 'static') t.ok(refused > 0, `${refused} runs refused what was swapped in`)
      })
    }
  })
}

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
