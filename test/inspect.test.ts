import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { ARCHES } from '../launcher/arch.js'
import { validateConfig } from '../launcher/config.js'
import { formatInspect, inspectFile } from '../launcher/inspect.js'
import { MARK_NOTE_NAME, MARK_NOTE_TYPE, configHash, parseMark, shimMark } from '../launcher/mark.js'
import { craftElf, EM_X86_64, ET_DYN } from './lib/elfcraft.js'

t.test('a dynamic program: loader, libraries and the glibc versions it needs', async (t) => {
  const r = inspectFile(readFileSync('/usr/bin/id'), '/usr/bin/id')
  t.equal(r.class, 'ELF64')
  t.equal(r.machine, 'x86_64')
  t.equal(r.static, false)
  t.equal(r.interpreter, '/lib64/ld-linux-x86-64.so.2')
  t.ok(r.needed.includes('libc.so.6'))
  const readelf = execFileSync('readelf', ['-V', '--wide', '/usr/bin/id'], { encoding: 'utf8' })
  const wanted = [...new Set([...readelf.matchAll(/Name: (GLIBC_\d[\d.]*)/g)].map((m) => m[1] as string))]
  t.same([...r.glibcVersions].sort(), wanted.sort(), 'the same GLIBC_ versions readelf lists')
  t.equal(r.shim, null)
  const text = formatInspect(r)
  t.match(text, /^file: +\/usr\/bin\/id$/m)
  t.match(text, /^linking: +dynamic$/m)
  t.match(text, /^interpreter: +"\/lib64\/ld-linux-x86-64.so.2"$/m)
  t.match(text, new RegExp(`^glibc: .*\\(newest: ${r.glibcVersions.at(-1)}\\)$`, 'm'))
})

t.test('a static file', async (t) => {
  const r = inspectFile(readFileSync('/bin/busybox'), '/bin/busybox')
  t.equal(r.static, true)
  t.equal(r.interpreter, null)
  t.same(r.needed, [])
  t.match(formatInspect(r), /^interpreter: +-$/m)
})

t.test('a shim is recognised by its mark', async (t) => {
  const config = validateConfig({ name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' })
  const mark = shimMark(config, ARCHES.x86_64)
  const desc = Buffer.from(`${JSON.stringify(mark)}\0`)
  const elf = craftElf({ machine: EM_X86_64, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc }] })
  const r = inspectFile(elf, 'shim')
  t.same(r.shim, mark)
  t.equal(r.shim?.config, configHash(config))
  const text = formatInspect(r)
  t.match(text, /^hostshim shim: +toolbox \(hostshim \d+\.\d+\.\d+, x86_64\)$/m)
  t.match(text, /^target: +"\/usr\/libexec\/toolbox\/toolbox"$/m)
  t.equal(mark.mode, 'chainload', 'the default mode, in the mark')
  t.equal(r.shimMode, 'chainload', 'the mark says the mode, whatever the ELF type')
  t.match(text, /^mode: +chainload \(maps the host loader in-process\)$/m)
  const execMark = shimMark(validateConfig({ name: 'toolbox', target: '/usr/libexec/toolbox/toolbox', mode: 'exec' }), ARCHES.x86_64)
  t.equal(execMark.mode, 'exec')
  const execDesc = Buffer.from(`${JSON.stringify(execMark)}\0`)
  const execPie = inspectFile(craftElf({ machine: EM_X86_64, type: ET_DYN, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: execDesc }] }), 'shim')
  t.equal(execPie.shimMode, 'exec', 'an exec shim, a static PIE like every zig-built shim')
  t.match(formatInspect(execPie), /^mode: +exec \(execs the host loader\)$/m)
  // An older mark, without a mode: only its chainload shims were static PIEs.
  const { mode: _mode, ...old } = mark
  const oldDesc = Buffer.from(`${JSON.stringify(old)}\0`)
  t.equal(inspectFile(craftElf({ machine: EM_X86_64, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: oldDesc }] }), 'shim').shimMode, 'exec', 'an older plain static executable: an exec shim')
  const pie = inspectFile(craftElf({ machine: EM_X86_64, type: ET_DYN, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: oldDesc }] }), 'shim')
  t.equal(pie.shimMode, 'chainload', 'an older static PIE: a chainload shim')
  const odd = Buffer.from(`${JSON.stringify({ ...mark, mode: 'teleport' })}\0`)
  t.equal(inspectFile(craftElf({ machine: EM_X86_64, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: odd }] }), 'shim').shim?.mode, undefined, 'a mode this version does not know is left out')
  t.equal(inspectFile(craftElf({ machine: EM_X86_64, type: ET_DYN }), 'x').shimMode, null, 'not a shim: no mode')
  // A note of another type, or that is not a mark, is not taken for one.
  t.equal(inspectFile(craftElf({ notes: [{ name: MARK_NOTE_NAME, type: 1, desc }] }), 'x').shim, null)
  t.equal(inspectFile(craftElf({ notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: Buffer.from('{"x":1}') }] }), 'x').shim, null)
})

t.test('a shim with a $ORIGIN target: the relative target, and where it is for this file', async (t) => {
  const config = validateConfig({ name: 'prog', target: '$ORIGIN/../libexec/prog' })
  const desc = Buffer.from(`${JSON.stringify(shimMark(config, ARCHES.x86_64))}\0`)
  const elf = craftElf({ machine: EM_X86_64, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc }] })
  const r = inspectFile(elf, '/home/u/bin/prog', '/home/u/src/build/bin/prog')
  t.equal(r.shim?.target, '$ORIGIN/../libexec/prog')
  t.equal(r.targetHere, '/home/u/src/build/libexec/prog', 'next to the resolved file, not the name it was given')
  t.match(formatInspect(r), /^target: +"\$ORIGIN\/\.\.\/libexec\/prog" \(next to the shim, in the caller's view: here "\/home\/u\/src\/build\/libexec\/prog"\)$/m)
  t.equal(inspectFile(elf, '/b/prog').targetHere, '/libexec/prog', 'without a resolved path: the file\'s own')
  const absolute = validateConfig({ name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' })
  const plain = Buffer.from(`${JSON.stringify(shimMark(absolute, ARCHES.x86_64))}\0`)
  t.equal(inspectFile(craftElf({ machine: EM_X86_64, notes: [{ name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: plain }] }), '/b/x').targetHere, null)
})

t.test('marks', async (t) => {
  t.equal(parseMark(Buffer.from('not json')), null)
  t.equal(parseMark(Buffer.from('{"hostshim":"1","target":"/x"}')), null, 'the config hash is required')
  const a = validateConfig({ name: 'a', target: '/x' })
  t.not(configHash(a), configHash({ ...a, target: '/y' }), 'the hash covers the target')
  t.equal(configHash(a), configHash({ ...a, arch: ['aarch64'] } as typeof a), 'not what is built or where')
})
