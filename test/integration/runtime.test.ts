// The runtime of a zig-built shim (shim/runtime.ts, shim/README.md section
// 11): no C library is linked, so nothing runs before main(). Traced from its
// execve to the execve of the program, the shim's first system call is its
// own stat of the host root (section 1), and none of a C library's start-up
// calls (thread pointer, tid address, robust futex list, rseq, brk) appears;
// its debug lines and the program's exit status show main() ran to the end.
//
// Needs: strace (.ci/setup).

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COMPILE_TIMEOUT_MS, MODES, buildShim } from '../lib/shims.js'
import { STRACE } from '../lib/shimrun.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 2)

/** Calls a C library makes before main(); the shim's runtime makes none of them. */
const START_UP = ['arch_prctl', 'set_tid_address', 'set_robust_list', 'rseq', 'brk', 'set_thread_area']

/** A host root that is not there: host mode, so the target runs directly. */
const NO_HOST_ROOT = '/nonexistent/hostshim-runtime-test'

if (!existsSync(STRACE)) t.fail(`${STRACE} is missing: .ci/setup installs strace`)

for (const mode of MODES) {
  t.test(`${mode} mode: no system call runs before the shim's own`, async (t) => {
    const shim = await buildShim({ name: 'rt', target: '/bin/sh', hostRoot: NO_HOST_ROOT }, mode)
    const dir = await mkdtemp(join(tmpdir(), 'hostshim-runtime-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const out = join(dir, 'trace')
    const r = spawnSync(STRACE, ['-qq', '-o', out, shim, '-c', 'exit 7'], {
      env: { PATH: '/usr/bin:/bin', HOSTSHIM_DEBUG: '1' },
      encoding: 'utf8',
    })
    t.equal(r.status, 7, 'the program ran, with the arguments: main() got to the exec')
    t.match(r.stderr, /^rt: mode: host\n/, 'the debug output, from main()')
    // strace: `name(args) = result`, one call a line; the shim's calls are those before the second execve.
    const calls = readFileSync(out, 'utf8')
      .split('\n')
      .map((line) => /^(\w+)\((.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
    const execs = calls.flatMap((m, i) => (/^execve/.test(m[1] ?? '') ? [i] : []))
    t.ok(execs.length >= 2, 'the shim, then the program')
    const own = calls.slice((execs[0] ?? 0) + 1, execs[1])
    t.ok(own.length > 0, 'the shim made system calls of its own')
    t.equal(own[0]?.[1], 'newfstatat', `first call: ${own[0]?.[0]}`)
    t.match(own[0]?.[2] ?? '', `"${NO_HOST_ROOT}"`, 'the stat of the host root')
    const startUp = own.filter((m) => START_UP.includes(m[1] ?? ''))
    t.same(
      startUp.map((m) => m[0]),
      [],
      'no C library start-up call',
    )
  })
}
