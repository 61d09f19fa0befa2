// shim/chainload.ts and the `mode` field: which shims chainload, what C they
// get, how they are compiled. The real runs are in test/integration/chainload.test.ts.

import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ARCHES, ARCH_NAMES, type Arch, type ArchName } from '../launcher/arch.js'
import { shimConfigOf, validateConfig, type ShimConfig } from '../launcher/config.js'
import { ConfigError } from '../launcher/errors.js'
import { configHash } from '../launcher/mark.js'
import { LDFLAGS, compileSteps, linkerScript, loadZig, writeZigInputs, zigEnv } from '../launcher/toolchain.js'
import {
  CHAINLOAD_ARCHES,
  chainloadBlock,
  chainloadFallbackNote,
  chainloadSupported,
  configForArch,
  effectiveMode,
} from '../shim/chainload.js'
import { renderShim } from '../shim/template.js'

const base = { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' }
const x86 = ARCHES.x86_64
/** An architecture hostshim has no jump for, to see the fallback. */
const unknown: Arch = { ...ARCHES.x86_64, name: 'mips64' as ArchName }

function shim(mode?: 'exec' | 'chainload'): ShimConfig {
  return shimConfigOf(validateConfig(mode === undefined ? base : { ...base, mode }))
}

t.test('mode: "chainload" (the default) or "exec", nothing else', async (t) => {
  t.equal(validateConfig(base).mode, 'chainload', 'absent: chainload, the default')
  t.equal(validateConfig({ ...base, mode: 'exec' }).mode, 'exec')
  t.equal(validateConfig({ ...base, mode: 'chainload' }).mode, 'chainload')
  for (const bad of ['Chainload', 'fork', '', 1, true, null, ['chainload']]) {
    t.throws(() => validateConfig({ ...base, mode: bad }), ConfigError, JSON.stringify(bad))
  }
  t.throws(() => validateConfig({ ...base, mode: 'fork' }), /mode: must be "exec" or "chainload", got string "fork"/)
})

t.test('exec-mode configs keep their shape and hash; chainload is part of the baked-in config', async (t) => {
  t.same(Object.keys(shim('exec')), ['name', 'target', 'hostRoot', 'libDirs', 'argv0', 'debugEnv', 'env'])
  t.same(shim('chainload'), shim(), 'an explicit "chainload" is the default')
  t.equal(configHash(shim('chainload')), configHash(shim()))
  t.equal(shim().mode, 'chainload')
  const { mode: _mode, ...execShape } = shim()
  t.same(shim('exec'), execShape, 'exec mode: the shape configs had before the field existed')
  t.not(configHash(shim('exec')), configHash(shim()), 'a chainload shim is told apart by its mark')
})

t.test('every architecture hostshim builds for can chainload', async (t) => {
  t.same([...CHAINLOAD_ARCHES].sort(), [...ARCH_NAMES].sort())
  for (const name of ARCH_NAMES) t.ok(chainloadSupported(ARCHES[name]), name)
})

t.test('an architecture without a jump falls back to exec mode, with a note', async (t) => {
  t.notOk(chainloadSupported(unknown))
  t.equal(effectiveMode(shim('chainload'), unknown), 'exec')
  t.equal(configForArch(shim('chainload'), unknown).mode, undefined, 'its mark says exec')
  t.match(chainloadFallbackNote(shim('chainload'), unknown), /chainload is not implemented for mips64 .* execs the loader instead/)
  t.equal(chainloadFallbackNote(shim('chainload'), x86), null)
  t.equal(chainloadFallbackNote(shim('exec'), unknown), null, 'no note for an exec config')
  t.equal(effectiveMode(shim('chainload'), x86), 'chainload')
  t.equal(effectiveMode(shim('exec'), x86), 'exec')
})

t.test('the C: exec mode only defines CHAINLOAD 0; chainload mode brings the loader mapping and the jump', async (t) => {
  t.equal(chainloadBlock(shim('exec'), x86).text, '#define CHAINLOAD 0')
  t.equal(chainloadBlock(shim('chainload'), unknown).text, '#define CHAINLOAD 0', 'fallback')
  const exec = renderShim(shim('exec'), x86)
  t.match(exec, /^#define CHAINLOAD 0$/m)
  t.notMatch(exec, /static int chainload\(/)
  for (const name of ARCH_NAMES) {
    const source = renderShim(shim('chainload'), ARCHES[name])
    t.match(source, /^#define CHAINLOAD 1$/m, name)
    t.match(source, /static int chainload\(int fd, unsigned long size, char \*\*args, char \*\*env, const unsigned long \*auxv, void \*spare,\s+size_t spare_len, unsigned char \*work\)/, name)
    t.match(source, /__asm__ volatile\(/, `${name}: its jump`)
    t.equal(source, renderShim(shim('chainload'), ARCHES[name]), `${name}: deterministic`)
  }
  t.match(renderShim(shim('chainload'), x86), /"d"\(0UL\)/, 'x86_64: %rdx = 0 at entry')
  t.match(renderShim(shim('chainload'), ARCHES.aarch64), /register unsigned long x0 __asm__\("x0"\) = 0, x16 __asm__\("x16"\) = entry;/, 'aarch64: x0 = 0')
})

t.test('shims of both modes are compiled as static PIEs with no C library, laid out by shim.ld', async (t) => {
  const [compile = [], link = []] = compileSteps(x86, 'shim.c', 'shim')
  t.ok(compile.includes('-fPIE'), 'PIE code')
  t.same(compile.slice(-4), ['-c', '-o', 'shim.o', 'shim.c'])
  t.ok(link.includes('-static') && link.includes('-fPIE'), '-static with -fPIE: zig links a static PIE')
  t.ok(link.includes('-nostdlib'), 'no C library: the runtime is the shim\'s own')
  t.ok(link.includes('-Wl,-T,shim.ld'), 'laid out by shim.ld')
  t.same(link.slice(-3), ['-o', 'shim', 'shim.o'])
  t.same(LDFLAGS.filter((f) => !link.includes(f)), [])
})

t.test('shim.ld: two loadable segments, no dynamic section, and no link that would need a relocation', async (t) => {
  for (const arch of ARCH_NAMES.map((n) => ARCHES[n])) {
    const script = linkerScript(arch)
    t.match(script, /PHDRS \{\n {2}image PT_LOAD FILEHDR PHDRS;\n {2}code PT_LOAD;\n {2}mark PT_NOTE;\n {2}stack PT_GNU_STACK;\n\}/, `${arch.name}: the segments`)
    t.match(script, /\/DISCARD\/ : \{ \*\(\.dynamic\)/, `${arch.name}: no dynamic section`)
    t.match(script, /ASSERT\(SIZEOF\(\.got\) <= \d+,/, `${arch.name}: GOT entries refused`)
  }
  // A pointer in the data: lld would leave it for a dynamic loader to relocate, and a shim has none.
  const zig = await loadZig()
  const dir = await mkdtemp(join(tmpdir(), 'hostshim-reloc-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const source = 'static const char s[] = "x";\nconst char *p = s;\nvoid _start(void)\n{\n\t__asm__ volatile("" : : "r"(p));\n\tfor (;;)\n\t\t;\n}\n'
  await writeZigInputs(dir, source, x86)
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(zig.path, args, { cwd: dir, env: zigEnv(dir) }, (error, _out, stderr) => resolve({ code: error ? 1 : 0, stderr })),
    )
  const [compile = [], link = []] = compileSteps(x86, 'shim.c', 'shim')
  t.equal((await run(compile)).code, 0, 'it compiles')
  const linked = await run(link)
  t.equal(linked.code, 1, 'it does not link')
  t.match(linked.stderr, /the shim's data holds a pointer, which needs a relocation/)
  await writeFile(join(dir, 'shim.c'), source.replace('const char *p = s;', 'static const char *const p = s;'))
  t.equal((await run(compile)).code, 0)
  t.equal((await run(link)).code, 0, 'the same without the pointer in the data links')
})
