// Run by tap before the test files (package.json "tap.before"): compile one
// shim per architecture and mode, one after the other, so that zig builds
// each musl variant the suite needs exactly once, on all cores, into its
// global cache. Without this, the first test files to need a target build
// its musl while other files wait on zig's lock or build another target at
// the same time: on a fresh two-core machine the waits ran past test
// timeouts. With a warm cache this takes a second (hostshim's cache answers).
//
// The shims go through generate() into the tests' compile cache, as the
// tests' own do; nothing else is kept.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ARCH_NAMES } from '../../launcher/arch.js'
import { SHIM_MODES, validateConfig } from '../../launcher/config.js'
import { generate } from '../../launcher/generate.js'
import { loadZig } from '../../launcher/toolchain.js'
import { TEST_CACHE_DIR } from './shims.js'

t.setTimeout(60 * 60_000)

const zig = await loadZig()
const out = await mkdtemp(join(tmpdir(), 'hostshim-warm-up-'))
t.teardown(() => rm(out, { recursive: true, force: true }))

for (const mode of SHIM_MODES) {
  t.test(`${mode} mode: a shim for each architecture`, async (t) => {
    for (const arch of ARCH_NAMES) {
      const started = performance.now()
      const config = validateConfig({ name: 'warm', target: '/usr/bin/warm', arch, mode, output: join(out, `${arch}-${mode}`) })
      const [built] = await generate(config, { toolchain: zig, cacheDir: TEST_CACHE_DIR })
      t.ok(built, `${arch} (${built?.mode}): ${built?.cached ? 'cached' : `compiled in ${((performance.now() - started) / 1000).toFixed(1)} s`}`)
    }
  })
}
