// Run by tap before the test files (package.json "tap.before"): compile one
// shim per architecture and mode, one after the other, so that zig builds
// what the suite needs of each target (its compiler-rt; until shims had
// their own runtime, musl too) exactly once, on all cores, into its global
// cache. Without this, the first test files to need a target build it while
// other files wait on zig's lock or build another target at the same time:
// on a fresh two-core machine the waits ran past test timeouts. With zig's
// cache warm each compile takes a second or two.
//
// The shims go through generate(), as the tests' own do, but with a compile
// cache of their own that starts empty: zig runs every time. Were the
// answer taken from a compile cache that outlived zig's (the tests' cache
// under /tmp, zig's under $HOME), nothing would be warmed, and the first
// test files to compile would build compiler-rt themselves, past their timeouts.
// Nothing is kept.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ARCH_NAMES } from '../../launcher/arch.js'
import { SHIM_MODES, validateConfig } from '../../launcher/config.js'
import { generate } from '../../launcher/generate.js'
import { loadZig } from '../../launcher/toolchain.js'

t.setTimeout(60 * 60_000)

const zig = await loadZig()
const out = await mkdtemp(join(tmpdir(), 'hostshim-warm-up-'))
t.teardown(() => rm(out, { recursive: true, force: true }))

for (const mode of SHIM_MODES) {
  t.test(`${mode} mode: a shim for each architecture`, async (t) => {
    for (const arch of ARCH_NAMES) {
      const started = performance.now()
      const config = validateConfig({ name: 'warm', target: '/usr/bin/warm', arch, mode, output: join(out, `${arch}-${mode}`) })
      const [built] = await generate(config, { toolchain: zig, cacheDir: join(out, 'cache') })
      t.equal(built?.cached, false, `${arch} (${built?.mode}): compiled in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    }
  })
}
