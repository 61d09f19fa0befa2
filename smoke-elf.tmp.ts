import { writeFileSync } from 'node:fs'
import { craftElf, EM_S390, EM_ARM, ET_DYN } from './test/lib/elfcraft.js'
import { parseElf } from './launcher/elf.js'
const a = craftElf({ class: 64, byteOrder: 'big', machine: EM_S390, interpreter: '/lib/ld64.so.1', needed: ['libc.so.6', 'libfoo.so'], runpath: '$ORIGIN/../lib', versionsNeeded: [{ file: 'libc.so.6', versions: ['GLIBC_2.2', 'GLIBC_2.34'] }], notes: [{ name: 'hostshim', type: 1, desc: Uint8Array.of(1, 2, 3) }] })
writeFileSync('/tmp/craft-s390.elf', a)
const b = craftElf({ class: 32, byteOrder: 'little', machine: EM_ARM, type: ET_DYN, soname: 'libx.so.1', versionsDefined: ['X_1.0', 'X_1.1'], rpath: '/opt/x' })
writeFileSync('/tmp/craft-arm.elf', b)
const c = craftElf({ class: 32, byteOrder: 'big', machine: 8, interpreter: '/lib/ld.so.1' })
writeFileSync('/tmp/craft-mips.elf', c)
for (const x of [a, b, c]) console.log(JSON.stringify(parseElf(x), (k, v) => k === 'desc' ? Array.from(v) : v))
