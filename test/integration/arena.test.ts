// The shim's arena at its fullest (shim/template.ts, "Memory"). ld.so.conf
// includes nest as deep as the shim follows them (8 levels); at every level
// the file being read is 64 KiB of text (all the shim reads of one), and its
// include pattern matches 256 files whose names fill the 16 KiB the shim
// keeps of them; the ninth level is listed, not read. So every level keeps
// the most it can, at once. The rendered C is built with AddressSanitizer
// (clang-14, against glibc) and run on this machine with the tree as its
// host root: an arena smaller than what the shim keeps would run past the
// end of the shim's memory object, which ASan reports. The run must also
// still print the model's plan and run the program.
//
// Needs: clang-14 and libclang-rt-14-dev (see .ci/setup).

import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ARCHES } from '../../launcher/arch.js'
import { shimConfigOf, validateConfig } from '../../launcher/config.js'
import { nodeHostView } from '../../launcher/hostview.js'
import { LIMITS, planShim } from '../../launcher/plan.js'
import { renderShim } from '../../shim/template.js'
import { CONTAINER_ENV, makeScratchDir, removeScratchDir } from '../lib/container.js'
import { CLANG, haveClang } from '../lib/fuzz.js'
import { DEBUG_ENV, parseDebug } from '../lib/shims.js'

// The shim's limits, as the plan model holds them: the tree is built to reach them.
const MAX_CONF = LIMITS.confBytes
const MAX_DEPTH = LIMITS.includeDepth
const MAX_MATCHES = LIMITS.includeMatches
const MAX_NAMES = LIMITS.includeNameBytes
/** 63 bytes and a NUL: 256 of them are MAX_NAMES exactly. */
const NAME_BYTES = MAX_NAMES / MAX_MATCHES - 1

t.setTimeout(300_000)

if (!haveClang()) {
  t.fail(`${CLANG} is missing: .ci/setup installs clang-14 and libclang-rt-14-dev`)
} else {
  const scratch = await makeScratchDir('arena')
  t.teardown(() => removeScratchDir(scratch))
  const tree = join(scratch, 'tree')

  /** A file of exactly MAX_CONF bytes: `head`, then comment lines. */
  const fullText = (head: string): string => {
    let text = head
    while (text.length < MAX_CONF) text += `#${'x'.repeat(Math.min(99, MAX_CONF - text.length - 2))}\n`
    return text.slice(0, MAX_CONF)
  }
  const confName = (i: number) => `${'n'.repeat(NAME_BYTES - 8)}${String(i).padStart(3, '0')}.conf`
  const put = (path: string, text: string) => {
    mkdirSync(join(tree, path, '..'), { recursive: true })
    writeFileSync(join(tree, path), text)
  }

  // Level 0 is /etc/ld.so.conf; level k (1..8) is /etc/ck/, whose first file
  // (in sorted order) includes level k + 1; /etc/c9/ is listed from level 8's.
  put('/etc/ld.so.conf', fullText('/lib/x86_64-linux-gnu\ninclude /etc/c1/*.conf\n'))
  for (let level = 1; level <= MAX_DEPTH + 1; level++) {
    for (let i = 0; i < MAX_MATCHES; i++) {
      const include = level <= MAX_DEPTH ? `include /etc/c${level + 1}/*.conf\n` : ''
      put(`/etc/c${level}/${confName(i)}`, i === 0 ? fullText(`${include}/usr/lib/level${level}\n`) : '# one of many\n')
    }
    mkdirSync(join(tree, `usr/lib/level${level}`), { recursive: true })
  }
  // The program, its loader (at true's PT_INTERP) and its libc.
  for (const [from, to] of [
    ['/usr/bin/true', '/usr/bin/prog'],
    ['/lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2'],
    ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'],
  ] as const) {
    mkdirSync(join(tree, to, '..'), { recursive: true })
    copyFileSync(from, join(tree, to))
  }

  // The tree is the host root: the shim runs on this machine, in container mode.
  const config = shimConfigOf(validateConfig({ name: 'arena', target: '/usr/bin/prog', hostRoot: tree, mode: 'exec' }))
  const source = join(scratch, 'shim.c')
  writeFileSync(source, renderShim(config, ARCHES.x86_64))
  const binary = join(scratch, 'shim-asan')
  // glibc under the sanitizers: musl's getdents() is glibc's getdents64() (test/fuzz/shim-under-test.h).
  const cc = spawnSync(
    CLANG,
    ['-std=gnu11', '-g', '-O1', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-Dgetdents=getdents64', '-o', binary, source],
    { encoding: 'utf8' },
  )

  t.test('ld.so.conf nested 8 deep, 64 KiB a file, 16 KiB of names a level: the arena holds', async (t) => {
    t.equal(cc.status, 0, cc.stderr)
    const r = spawnSync(binary, [], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
    const stderr = r.stderr.toString('latin1')
    t.notMatch(stderr, /AddressSanitizer|runtime error/, 'no sanitizer report')
    t.equal(r.status, 0, `the program ran\n${stderr}`)
    const plan = planShim(config, ARCHES.x86_64, nodeHostView(tree), { mode: 'container', argv: [binary] })
    t.ok(plan.ok, 'the model plans a run')
    if (!plan.ok) return
    const debug = parseDebug(r.stderr, config.name)
    t.equal(debug.libraryPath?.toString('latin1'), plan.libraryPath, 'the library path is the model\'s')
    // Every level's directory: the shim read each level's first file, all 9 of them.
    for (let level = 1; level <= MAX_DEPTH; level++) t.match(plan.libraryPath, `${tree}/usr/lib/level${level}`)
    t.notMatch(plan.libraryPath, `${tree}/usr/lib/level${MAX_DEPTH + 1}`, 'level 9 is listed, never read')
  })
}
