// The plan model against small host trees: the layouts of real distributions,
// the resolution rules (links, "..", loops, lengths), the ELF checks, the
// ld.so.conf syntax, and the exact strings the shim prints.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { ARCHES, nativeArch, type Arch } from '../launcher/arch.js'
import type { ShimConfig } from '../launcher/config.js'
import { detectMode, nodeHostView } from '../launcher/hostview.js'
import {
  FAILURES,
  LIMITS,
  STRERROR,
  debugEnabled,
  escapeDebug,
  execEnvironment,
  formatDebug,
  fromHostBytes,
  hostString,
  isHostErr,
  jsString,
  matchName,
  planShim,
  planToJson,
  readElf,
  resolveInRoot,
  toHostBytes,
  WorkBudget,
  type HostFile,
  type HostView,
  type Plan,
  type PlanFailure,
  type PlanRun,
  type PlanOptions,
} from '../launcher/plan.js'
import { EM_386, EM_AARCH64, EM_S390, EM_X86_64, ET_DYN, ET_REL, PT_LOAD, craftElf, type CraftOptions } from './lib/elfcraft.js'
import { seedFastCheck } from './lib/seed.js'

seedFastCheck(t, 20261204)

const x86 = ARCHES.x86_64
const LD = '/lib64/ld-linux-x86-64.so.2'
const DEB_LD = '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'

// ---------------------------------------------------------------------------
// Tree building.

type Entry = string | Buffer | { link: string | Buffer } | { dir: true } | { file: string | Buffer; mode: number } | { fifo: true }
type Spec = Record<string, Entry>

function build(root: string, spec: Spec): string {
  for (const [path, entry] of Object.entries(spec)) {
    const real = join(root, path)
    fs.mkdirSync(dirname(real), { recursive: true })
    if (typeof entry === 'string') fs.writeFileSync(real, entry, { mode: 0o644 })
    else if (Buffer.isBuffer(entry)) fs.writeFileSync(real, entry, { mode: 0o755 })
    else if ('link' in entry) fs.symlinkSync(entry.link, real)
    else if ('dir' in entry) fs.mkdirSync(real, { recursive: true })
    else if ('fifo' in entry) execFileSync('mkfifo', [real])
    else {
      fs.writeFileSync(real, entry.file)
      fs.chmodSync(real, entry.mode)
    }
  }
  return root
}

/** An x86_64 program; PT_INTERP when interp is given. */
function exe(interp?: string | Uint8Array, more: CraftOptions = {}): Buffer {
  return craftElf({ machine: EM_X86_64, load: true, ...(interp === undefined ? {} : { interpreter: interp }), ...more })
}

/** An x86_64 loader: ET_DYN, no PT_INTERP, with or without the "--argv0" string of glibc >= 2.33. */
function loader(argv0 = true, more: CraftOptions = {}): Buffer {
  const elf = craftElf({ machine: EM_X86_64, type: ET_DYN, load: true, ...more })
  return Buffer.concat([elf, Buffer.from(argv0 ? '\0--inhibit-cache\0--argv0\0' : '\0--inhibit-cache\0--library-path\0')])
}

function config(over: Partial<ShimConfig> = {}): ShimConfig {
  return {
    name: 'toolbox',
    target: '/usr/bin/toolbox',
    hostRoot: '/run/host',
    libDirs: [],
    argv0: true,
    debugEnv: 'HOSTSHIM_DEBUG',
    env: [],
    ...over,
  }
}

function plan(root: string, over: Partial<ShimConfig> = {}, opts: Partial<PlanOptions> = {}, arch: Arch = x86): Plan {
  return planShim(config(over), arch, nodeHostView(root), { mode: 'container', argv: ['toolbox', 'list', '-c'], ...opts })
}

/** The argv of a loader exec, as section 7 lays it out. */
function viaLoader(ld: string, lp: string, target: string, args: string[] = ['list', '-c'], argv0: string | null = 'toolbox'): string[] {
  return [ld, ...(argv0 === null ? [] : ['--argv0', argv0]), '--inhibit-cache', '--library-path', lp, target, ...args]
}

/** The plan, which must be a run. */
function ran(p: Plan): PlanRun {
  if (!p.ok) throw new Error(`expected a run, got ${p.message}`)
  return p
}

/** The plan, which must be a failure. */
function failed(p: Plan): PlanFailure {
  if (p.ok) throw new Error(`expected a failure, got ${p.exec}`)
  return p
}

/** Without XDG_RUNTIME_DIR the shim computes its plan, and says so. */
const NO_CACHE = 'computed (no XDG_RUNTIME_DIR)'

function okPlan(mode: 'container' | 'host', ld: string | null, lp: string | null, exec: string, argv: string[]) {
  return { ok: true, mode, plan: NO_CACHE, loader: ld, libraryPath: lp, exec, argv, env: null }
}

function failPlan(what: keyof typeof FAILURES, path: string, errno: keyof typeof STRERROR, mode: 'container' | 'host' = 'container') {
  return {
    ok: false,
    mode,
    exitCode: errno === 'ENOENT' || errno === 'ENOTDIR' ? 127 : 126,
    errno,
    what,
    path,
    message: `toolbox: ${FAILURES[what]}: ${path}: ${STRERROR[errno]}`,
  }
}

// ---------------------------------------------------------------------------
// Distributions.

const debianConf: Spec = {
  '/etc/ld.so.conf': 'include /etc/ld.so.conf.d/*.conf\n\n',
  '/etc/ld.so.conf.d/libc.conf': '# libc default configuration\n/usr/local/lib\n',
  '/etc/ld.so.conf.d/x86_64-linux-gnu.conf':
    '# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n',
}

t.test('Debian: the absolute /lib64 link is re-rooted, ld.so.conf.d is read in order', async (t) => {
  const root = build(t.testdir(), {
    [DEB_LD]: loader(),
    '/lib/x86_64-linux-gnu/libc.so.6': 'libc',
    [LD]: { link: DEB_LD },
    '/usr/lib/x86_64-linux-gnu': { dir: true },
    '/usr/local/lib': { dir: true },
    '/usr/bin/toolbox': exe(LD),
    ...debianConf,
  })
  const lp = [
    '/run/host/lib/x86_64-linux-gnu',
    '/run/host/usr/local/lib',
    '/run/host/usr/lib/x86_64-linux-gnu',
    '/run/host/lib64',
    '/run/host/lib',
    '/run/host/usr/lib',
  ].join(':')
  const ld = '/run/host/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'
  const p = plan(root)
  t.same(p, okPlan('container', ld, lp, ld, viaLoader(ld, lp, '/run/host/usr/bin/toolbox')))
  t.equal(
    formatDebug(config(), p),
    [
      'toolbox: mode: container',
      `toolbox: plan: ${NO_CACHE}`,
      `toolbox: loader: ${ld}`,
      `toolbox: library-path: ${lp}`,
      `toolbox: exec: ${ld}`,
      `toolbox: argv[0]: ${ld}`,
      'toolbox: argv[1]: --argv0',
      'toolbox: argv[2]: toolbox',
      'toolbox: argv[3]: --inhibit-cache',
      'toolbox: argv[4]: --library-path',
      `toolbox: argv[5]: ${lp}`,
      'toolbox: argv[6]: /run/host/usr/bin/toolbox',
      'toolbox: argv[7]: list',
      'toolbox: argv[8]: -c',
      '',
    ].join('\n'),
  )
  t.same(planToJson(p), { mode: 'container', plan: NO_CACHE, loader: ld, libraryPath: lp, exec: ld, argv: viaLoader(ld, lp, '/run/host/usr/bin/toolbox') })
})

t.test('Debian 12: usr-merged, /usr/lib64/ld-linux-x86-64.so.2 an absolute link', async (t) => {
  const root = build(t.testdir(), {
    '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2': loader(),
    '/usr/lib64/ld-linux-x86-64.so.2': { link: DEB_LD },
    '/lib': { link: 'usr/lib' },
    '/lib64': { link: 'usr/lib64' },
    '/bin': { link: 'usr/bin' },
    '/usr/local/lib': { dir: true },
    '/usr/bin/toolbox': exe(LD),
    ...debianConf,
  })
  const ld = '/run/host/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'
  const lp = '/run/host/usr/lib/x86_64-linux-gnu:/run/host/usr/local/lib:/run/host/usr/lib64:/run/host/usr/lib'
  t.same(plan(root, { target: '/bin/toolbox' }), okPlan('container', ld, lp, ld, viaLoader(ld, lp, '/run/host/usr/bin/toolbox')))
})

const fedora: Spec = {
  '/usr/lib64/ld-linux-x86-64.so.2': loader(),
  '/usr/lib64/dyninst': { dir: true },
  '/usr/lib': { dir: true },
  '/lib64': { link: 'usr/lib64' },
  '/lib': { link: 'usr/lib' },
  '/bin': { link: 'usr/bin' },
  '/etc/ld.so.conf': 'include ld.so.conf.d/*.conf\n',
  '/etc/ld.so.conf.d/dyninst-x86_64.conf': '/usr/lib64/dyninst\n',
}
const FEDORA_LD = '/run/host/usr/lib64/ld-linux-x86-64.so.2'
const FEDORA_LP = '/run/host/usr/lib64:/run/host/usr/lib64/dyninst:/run/host/usr/lib'

t.test('Fedora: relative /lib64 link, relative include', async (t) => {
  const root = build(t.testdir(), { ...fedora, '/usr/bin/toolbox': exe(LD) })
  t.same(plan(root), okPlan('container', FEDORA_LD, FEDORA_LP, FEDORA_LD, viaLoader(FEDORA_LD, FEDORA_LP, '/run/host/usr/bin/toolbox')))
  // The exec path is the resolved one, even when TARGET goes through a link.
  t.same(plan(root, { target: '/bin/toolbox' }), plan(root))
})

t.test('Arch: /lib64 -> usr/lib, /usr/lib64 -> lib', async (t) => {
  const root = build(t.testdir(), {
    '/usr/lib/ld-linux-x86-64.so.2': loader(),
    '/lib64': { link: 'usr/lib' },
    '/usr/lib64': { link: 'lib' },
    '/lib': { link: 'usr/lib' },
    '/etc/ld.so.conf': '# Dynamic linker/loader configuration.\n# See ld.so(8) and ldconfig(8) for details.\n\ninclude /etc/ld.so.conf.d/*.conf\n',
    '/etc/ld.so.conf.d': { dir: true },
    '/usr/bin/toolbox': exe(LD),
  })
  const ld = '/run/host/usr/lib/ld-linux-x86-64.so.2'
  t.same(plan(root), okPlan('container', ld, '/run/host/usr/lib', ld, viaLoader(ld, '/run/host/usr/lib', '/run/host/usr/bin/toolbox')))
})

t.test('old Toolbx: only /usr mounted, the loader is found at its usr-merged twin', async (t) => {
  const root = build(t.testdir(), {
    '/usr/lib64/ld-linux-x86-64.so.2': loader(),
    '/usr/lib': { dir: true },
    '/usr/bin/toolbox': exe(LD),
  })
  const lp = '/run/host/usr/lib64:/run/host/usr/lib'
  t.same(plan(root), okPlan('container', FEDORA_LD, lp, FEDORA_LD, viaLoader(FEDORA_LD, lp, '/run/host/usr/bin/toolbox')))

  // ENOTDIR on the way is a missing loader too: the twin is tried.
  const file = build(t.testdir(), {
    '/lib64': 'not a directory',
    '/usr/lib64/ld-linux-x86-64.so.2': loader(),
    '/usr/bin/toolbox': exe(LD),
  })
  t.equal(ran(plan(file)).loader, FEDORA_LD)

  // Both missing: the message names the first path and its errno.
  const none = build(t.testdir(), { '/usr/bin/toolbox': exe(LD) })
  t.same(plan(none), failPlan('loaderMissing', `/run/host${LD}`, 'ENOENT'))
  const noneFile = build(t.testdir(), { '/lib64': 'file', '/usr/bin/toolbox': exe(LD) })
  t.same(plan(noneFile), failPlan('loaderMissing', `/run/host${LD}`, 'ENOTDIR'))

  // Only paths starting with /lib have a twin; a loop is not "missing".
  const opt = build(t.testdir(), { '/usr/opt/ld.so': loader(), '/usr/bin/toolbox': exe('/opt/ld.so') })
  t.same(plan(opt), failPlan('loaderMissing', '/run/host/opt/ld.so', 'ENOENT'))
  const loop = build(t.testdir(), { [LD]: { link: 'ld-linux-x86-64.so.2' }, '/usr/lib64/ld-linux-x86-64.so.2': loader(), '/usr/bin/toolbox': exe(LD) })
  t.same(plan(loop), failPlan('loaderMissing', `/run/host${LD}`, 'ELOOP'))

  // A twin that is found but cannot run is named by its own (resolved) path.
  const bad = build(t.testdir(), { '/usr/lib64/ld-linux-x86-64.so.2': { file: loader(), mode: 0o644 }, '/usr/bin/toolbox': exe(LD) })
  t.same(plan(bad), failPlan('loaderBad', FEDORA_LD, 'EACCES'))
})

t.test('Toolbx-built binaries: PT_INTERP under /run/host', async (t) => {
  const root = build(t.testdir(), { ...fedora, '/usr/bin/toolbox': exe(`/run/host${LD}`), '/usr/bin/plain': exe(LD) })
  // In a container the prefix is the host root: the same plan as a plain binary.
  t.same(plan(root), okPlan('container', FEDORA_LD, FEDORA_LP, FEDORA_LD, viaLoader(FEDORA_LD, FEDORA_LP, '/run/host/usr/bin/toolbox')))

  // On the host: run through the host's loader, so no /run/host symlink is needed.
  const lp = '/usr/lib64:/usr/lib64/dyninst:/usr/lib'
  const ld = '/usr/lib64/ld-linux-x86-64.so.2'
  const host = plan(root, {}, { mode: 'host' })
  t.same(host, okPlan('host', ld, lp, ld, viaLoader(ld, lp, '/usr/bin/toolbox')))
  t.match(formatDebug(config(), host), /^toolbox: mode: host\ntoolbox: plan: computed \(no XDG_RUNTIME_DIR\)\ntoolbox: loader: \/usr\/lib64\/ld-linux-x86-64.so.2\n/)

  // A plain binary on the host is exec'd directly, through its resolved path.
  t.same(plan(root, { target: '/bin/plain' }, { mode: 'host' }), okPlan('host', null, null, '/usr/bin/plain', ['toolbox', 'list', '-c']))

  // On the host the loader is resolved below "/": a missing one is named without the prefix.
  const missing = build(t.testdir(), { '/usr/bin/toolbox': exe(`/run/host${LD}`) })
  t.same(plan(missing, {}, { mode: 'host' }), failPlan('loaderMissing', LD, 'ENOENT', 'host'))

  // The prefix must be followed by "/": /run/hostile is not under /run/host.
  const hostile = build(t.testdir(), { ...fedora, '/usr/bin/toolbox': exe('/run/hostile/ld.so') })
  t.same(plan(hostile), failPlan('loaderMissing', '/run/host/run/hostile/ld.so', 'ENOENT'))
  t.same(plan(hostile, {}, { mode: 'host' }), okPlan('host', null, null, '/usr/bin/toolbox', ['toolbox', 'list', '-c']))
})

t.test('a static target is exec\'d directly', async (t) => {
  const root = build(t.testdir(), { ...fedora, '/usr/bin/toolbox': exe() })
  const p = plan(root)
  t.same(p, okPlan('container', null, null, '/run/host/usr/bin/toolbox', ['toolbox', 'list', '-c']))
  t.equal(
    formatDebug(config(), p),
    'toolbox: mode: container\ntoolbox: plan: computed (no XDG_RUNTIME_DIR)\ntoolbox: loader: -\ntoolbox: library-path: -\ntoolbox: exec: /run/host/usr/bin/toolbox\n' +
      'toolbox: argv[0]: toolbox\ntoolbox: argv[1]: list\ntoolbox: argv[2]: -c\n',
  )
  t.same(plan(root, {}, { mode: 'host' }), okPlan('host', null, null, '/usr/bin/toolbox', ['toolbox', 'list', '-c']))
})

// ---------------------------------------------------------------------------
// Resolution.

t.test('symbolic links: 40 are followed, the 41st is ELOOP', async (t) => {
  const chain = (links: number): Spec => {
    const spec: Spec = { '/c/l0': exe() }
    // Absolute links: each one is re-rooted.
    for (let i = 1; i <= links; i++) spec[`/c/l${i}`] = { link: `/c/l${i - 1}` }
    return spec
  }
  const forty = build(t.testdir(), chain(40))
  t.same(plan(forty, { target: '/c/l40' }), okPlan('container', null, null, '/run/host/c/l0', ['toolbox', 'list', '-c']))
  const fortyOne = build(t.testdir(), chain(41))
  t.same(plan(fortyOne, { target: '/c/l41' }), failPlan('targetMissing', '/run/host/c/l41', 'ELOOP'))

  // Links met in directories count too.
  const dirs = build(t.testdir(), { ...chain(39), '/d0': { link: 'c' }, '/d1': { link: 'd0' } })
  t.same(plan(dirs, { target: '/d1/l38' }), okPlan('container', null, null, '/run/host/c/l0', ['toolbox', 'list', '-c']))
  t.same(plan(dirs, { target: '/d1/l39' }), failPlan('targetMissing', '/run/host/d1/l39', 'ELOOP'))

  const self = build(t.testdir(), { '/usr/bin/toolbox': { link: 'toolbox' } })
  t.same(plan(self), failPlan('targetMissing', '/run/host/usr/bin/toolbox', 'ELOOP'))
})

t.test('".." stops at the root, and is walked physically', async (t) => {
  const root = build(t.testdir(), {
    '/opt/tb/toolbox': exe(),
    '/usr/bin/toolbox': { link: '../../../../../../opt/tb/toolbox' },
    '/usr/bin/abs': { link: '/../../opt/tb/toolbox' },
    '/usr/lib64/tool': exe(),
    '/lib64': { link: 'usr/lib64' },
    // /lib64/.. is /usr (where the link leads), not / (where it was written).
    '/usr/bin/phys': { link: '/lib64/../lib64/tool' },
  })
  const direct = (exec: string) => okPlan('container', null, null, exec, ['toolbox', 'list', '-c'])
  t.same(plan(root), direct('/run/host/opt/tb/toolbox'))
  t.same(plan(root, { target: '/usr/bin/abs' }), direct('/run/host/opt/tb/toolbox'))
  t.same(plan(root, { target: '/../../usr/./bin//toolbox' }), direct('/run/host/opt/tb/toolbox'))
  t.same(plan(root, { target: '/usr/bin/phys' }), direct('/run/host/usr/lib64/tool'))
  // The root itself: a directory.
  t.same(plan(root, { target: '/usr/..' }), failPlan('targetBad', '/run/host/', 'EISDIR'))
  t.same(plan(root, { target: '/usr/..' }, { mode: 'host' }), failPlan('targetBad', '/', 'EISDIR', 'host'))
})

t.test('resolveInRoot', async (t) => {
  const root = build(t.testdir(), {
    '/usr/bin/tool': exe(),
    '/usr/bin/dirlink': { link: '/usr' },
    '/usr/bin/filelink': { link: 'tool' },
  })
  const view = nodeHostView(root)
  const path = (p: string) => {
    const r = resolveInRoot(view, '/run/host', p)
    return isHostErr(r) ? r.errno : [r.path, r.full, r.stat.kind]
  }
  t.same(path('/'), ['/', '/run/host/', 'dir'])
  t.same(path(''), ['/', '/run/host/', 'dir'])
  t.same(path('usr/bin'), ['/usr/bin', '/run/host/usr/bin', 'dir'])
  t.same(path('/usr/bin/dirlink/bin/tool'), ['/usr/bin/tool', '/run/host/usr/bin/tool', 'file'])
  t.same(path('/usr/bin/dirlink/'), ['/usr', '/run/host/usr', 'dir'])
  t.same(path('/usr/bin/filelink'), ['/usr/bin/tool', '/run/host/usr/bin/tool', 'file'])
  // Anything after a file, even a lone "/", is ENOTDIR.
  t.equal(path('/usr/bin/tool/'), 'ENOTDIR')
  t.equal(path('/usr/bin/tool/.'), 'ENOTDIR')
  t.equal(path('/usr/bin/filelink/'), 'ENOTDIR')
  t.equal(path('/usr/bin/tool/x'), 'ENOTDIR')
  t.equal(path('/usr/nothing/x'), 'ENOENT')
  t.same(path('/usr/nothing/..'), 'ENOENT')
})

t.test('ENAMETOOLONG: root + path, and link text + what is left', async (t) => {
  const root = build(t.testdir(), { '/usr/bin/toolbox': exe(), '/usr/bin/tool': exe() })
  // A 4081-byte host root: /usr/bin/tool makes 4094 bytes, /usr/bin/toolbox 4097.
  const hostRoot = `/${'h'.repeat(4080)}`
  t.same(plan(root, { hostRoot, target: '/usr/bin/tool' }), okPlan('container', null, null, `${hostRoot}/usr/bin/tool`, ['toolbox', 'list', '-c']))
  const p = plan(root, { hostRoot })
  const cut = `${hostRoot}/usr/bin/toolbox`.slice(0, 4095)
  t.same(p, failPlan('targetMissing', cut, 'ENAMETOOLONG'))
  t.equal(toHostBytes(failed(p).message).length, 'toolbox: cannot find target: '.length + 4095 + ': Filename too long'.length)

  // Short components: a name over 255 bytes is the kernel's ENAMETOOLONG, not the shim's.
  const long = build(t.testdir(), { '/a/l': { link: 'x/'.repeat(2000) } })
  const rest = `/${'y'.repeat(94)}`
  t.same(plan(long, { target: `/a/l${rest}` }), failPlan('targetMissing', `/run/host/a/l${rest}`, 'ENOENT'))
  t.same(plan(long, { target: `/a/l${rest}y` }), failPlan('targetMissing', `/run/host/a/l${rest}y`, 'ENAMETOOLONG'))
})

t.test('the target: missing, not a directory, not runnable', async (t) => {
  const root = build(t.testdir(), {
    '/usr/bin/toolbox': { link: '/usr/libexec/toolbox/toolbox' },
    '/usr/libexec/toolbox/toolbox': { file: exe(), mode: 0o644 },
    '/usr/bin/dir': { dir: true },
    '/usr/bin/fifo': { fifo: true },
    '/usr/bin/file': 'x',
  })
  t.same(plan(root, { target: '/usr/libexec/missing/toolbox' }), failPlan('targetMissing', '/run/host/usr/libexec/missing/toolbox', 'ENOENT'))
  t.same(plan(root, { target: '/usr/bin/file/toolbox' }), failPlan('targetMissing', '/run/host/usr/bin/file/toolbox', 'ENOTDIR'))
  // Checks after resolution name the resolved path.
  t.same(plan(root), failPlan('targetBad', '/run/host/usr/libexec/toolbox/toolbox', 'EACCES'))
  t.same(plan(root, { target: '/usr/bin/dir' }), failPlan('targetBad', '/run/host/usr/bin/dir', 'EISDIR'))
  t.same(plan(root, { target: '/usr/bin/fifo' }), failPlan('targetBad', '/run/host/usr/bin/fifo', 'EACCES'))
  t.equal(failed(plan(root, { target: '/usr/bin/missing' })).exitCode, 127)
  t.equal(failed(plan(root)).exitCode, 126)
})

// ---------------------------------------------------------------------------
// ELF checks.

t.test('the target\'s ELF header, as binfmt_elf checks it', async (t) => {
  const interp = (text: Uint8Array | string) => exe(text)
  const bad: Record<string, Buffer> = {
    script: Buffer.from('#!/bin/sh\necho hi\n'),
    empty: Buffer.alloc(0),
    'short header': exe(LD, { truncate: 63 }),
    'ELF class 3': (() => {
      const b = craftElf({ machine: EM_X86_64 })
      b[4] = 3
      return b
    })(),
    'ET_REL': exe(LD, { type: ET_REL }),
    // The type is checked before the machine: a foreign ET_REL is just bad.
    'foreign ET_REL': craftElf({ machine: EM_AARCH64, type: ET_REL }),
    'e_phentsize 55': exe(LD, { header: { phentsize: 55 } }),
    'e_phnum 0': exe(LD, { header: { phnum: 0 } }),
    'e_phnum 1171': craftElf({ machine: EM_X86_64, segments: Array.from({ length: 1171 }, () => ({ type: 0 })) }),
    'headers past the end': exe(LD, { header: { phoff: 1 << 20 } }),
    'headers cut': exe(LD, { truncate: 64 + 56 + 10 }),
    'PT_INTERP of 1 byte': interp(Uint8Array.of(0)),
    'PT_INTERP of 4097 bytes': interp(`/${'a'.repeat(4095)}`),
    'PT_INTERP without NUL': interp(Buffer.from(LD)),
    'PT_INTERP past the end': exe(LD, { editSegments: (s, size) => void ((s[0] as { offset: number }).offset = size) }),
    'PT_INTERP offset 2^63': exe(LD, { editSegments: (s) => void ((s[0] as { offset: number }).offset = 2 ** 63) }),
    'first PT_INTERP bad': craftElf({ machine: EM_X86_64, interpreters: [Buffer.from('x'), LD] }),
  }
  const root = build(t.testdir(), {
    ...fedora,
    ...Object.fromEntries(Object.entries(bad).map(([name, bytes]) => [`/bad/${name}`, bytes])),
    '/ok/1170 headers': craftElf({ machine: EM_X86_64, segments: Array.from({ length: 1170 }, () => ({ type: 0 })) }),
    '/ok/two PT_INTERP': craftElf({ machine: EM_X86_64, interpreters: [LD, '/nonexistent'] }),
    '/ok/NUL inside': exe(Buffer.from(`${LD}\0junk\0`)),
    '/ok/ET_DYN': exe(LD, { type: ET_DYN }),
    '/ok/foreign': craftElf({ machine: EM_AARCH64, interpreter: LD }),
    '/ok/ELF class 32': craftElf({ class: 32, machine: EM_X86_64 }),
    '/ok/big endian': craftElf({ byteOrder: 'big', machine: EM_X86_64 }),
  })
  for (const name of Object.keys(bad)) {
    t.same(plan(root, { target: `/bad/${name}` }), failPlan('targetBad', `/run/host/bad/${name}`, 'ENOEXEC'), name)
  }
  t.same(plan(root, { target: '/ok/1170 headers' }), okPlan('container', null, null, '/run/host/ok/1170 headers', ['toolbox', 'list', '-c']))
  for (const name of ['two PT_INTERP', 'NUL inside', 'ET_DYN']) {
    t.same(plan(root, { target: `/ok/${name}` }), okPlan('container', FEDORA_LD, FEDORA_LP, FEDORA_LD, viaLoader(FEDORA_LD, FEDORA_LP, `/run/host/ok/${name}`)), name)
  }
  // Another class or byte order is another kind of machine too.
  for (const name of ['ELF class 32', 'big endian']) {
    t.same(plan(root, { target: `/ok/${name}` }), failPlan('wrongArch', `/run/host/ok/${name}`, 'ENOEXEC'), name)
  }
  const foreign = plan(root, { target: '/ok/foreign' })
  t.same(foreign, failPlan('wrongArch', '/run/host/ok/foreign', 'ENOEXEC'))
  t.equal(failed(foreign).message, 'toolbox: wrong architecture: /run/host/ok/foreign: Exec format error')
  // The same binary is right for an aarch64 shim, whose loader (the usr-merged twin) is then the foreign one.
  t.same(plan(root, { target: '/ok/foreign' }, {}, ARCHES.aarch64), failPlan('wrongArch', FEDORA_LD, 'ENOEXEC'))
})

t.test('odd PT_INTERPs', async (t) => {
  const root = build(t.testdir(), {
    ...fedora,
    '/usr/bin/empty': exe(Uint8Array.of(0, 0)),
    '/usr/bin/longest': exe(`/${'a'.repeat(4094)}`),
    '/usr/bin/relative': exe('lib64/ld-linux-x86-64.so.2'),
  })
  // "" resolves to the root: a directory.
  t.same(plan(root, { target: '/usr/bin/empty' }), failPlan('loaderBad', '/run/host/', 'EISDIR'))
  // 4096 bytes with the NUL is accepted; under the root it is too long to resolve.
  t.same(plan(root, { target: '/usr/bin/longest' }), failPlan('loaderMissing', `/run/host/${'a'.repeat(4094)}`.slice(0, 4095), 'ENAMETOOLONG'))
  // A relative PT_INTERP is walked from the root like any host path; the message joins them as they are.
  t.same(plan(root, { target: '/usr/bin/relative' }), okPlan('container', FEDORA_LD, FEDORA_LP, FEDORA_LD, viaLoader(FEDORA_LD, FEDORA_LP, '/run/host/usr/bin/relative')))
  t.same(plan(root, { target: '/usr/bin/relative' }, { mode: 'host' }), okPlan('host', null, null, '/usr/bin/relative', ['toolbox', 'list', '-c']))
})

t.test('the loader must be a runnable ELF file of this architecture', async (t) => {
  const tree = (ld: Entry) => build(t.testdir(), { [LD]: ld, '/usr/bin/toolbox': exe(LD) })
  const path = `/run/host${LD}`
  t.same(plan(tree({ file: loader(), mode: 0o644 })), failPlan('loaderBad', path, 'EACCES'))
  t.same(plan(tree({ dir: true })), failPlan('loaderBad', path, 'EISDIR'))
  t.same(plan(tree({ fifo: true })), failPlan('loaderBad', path, 'EACCES'))
  t.same(plan(tree(Buffer.from('#!/bin/sh\n'))), failPlan('loaderBad', path, 'ENOEXEC'))
  t.same(plan(tree(craftElf({ machine: EM_AARCH64, type: ET_DYN, load: true }))), failPlan('wrongArch', path, 'ENOEXEC'))
  // The loader's own PT_INTERP is checked like any other (and then ignored).
  t.same(plan(tree(loader(true, { interpreter: Buffer.from('x') }))), failPlan('loaderBad', path, 'ENOEXEC'))
  t.equal(ran(plan(tree(loader(true, { interpreter: '/elsewhere' })))).loader, path)
})

t.test('32-bit and big-endian architectures', async (t) => {
  const i686 = build(t.testdir(), {
    '/lib/ld-linux.so.2': Buffer.concat([craftElf({ class: 32, machine: EM_386, type: ET_DYN, load: true }), Buffer.from('--argv0')]),
    '/usr/lib': { dir: true },
    '/usr/bin/toolbox': craftElf({ class: 32, machine: EM_386, interpreter: '/lib/ld-linux.so.2' }),
    '/usr/bin/amd64': exe(LD),
  })
  const lp = '/run/host/lib:/run/host/usr/lib'
  const ld = '/run/host/lib/ld-linux.so.2'
  t.same(plan(i686, {}, {}, ARCHES.i686), okPlan('container', ld, lp, ld, viaLoader(ld, lp, '/run/host/usr/bin/toolbox')))
  t.same(plan(i686, { target: '/usr/bin/amd64' }, {}, ARCHES.i686), failPlan('wrongArch', '/run/host/usr/bin/amd64', 'ENOEXEC'))

  const s390x = build(t.testdir(), {
    '/lib/ld64.so.1': { link: '/usr/lib/ld64.so.1' },
    '/usr/lib/ld64.so.1': craftElf({ byteOrder: 'big', machine: EM_S390, type: ET_DYN, load: true }),
    '/lib64': { dir: true },
    '/usr/bin/toolbox': craftElf({ byteOrder: 'big', machine: EM_S390, interpreter: '/lib/ld64.so.1' }),
  })
  const ld2 = '/run/host/usr/lib/ld64.so.1'
  const lp2 = '/run/host/usr/lib:/run/host/lib64:/run/host/lib'
  t.same(plan(s390x, {}, {}, ARCHES.s390x), okPlan('container', ld2, lp2, ld2, viaLoader(ld2, lp2, '/run/host/usr/bin/toolbox', ['list', '-c'], null)))
})

t.test('readElf on bytes', async (t) => {
  const file = (bytes: Buffer): HostFile => ({
    read: (offset, length) => bytes.subarray(Number(offset), Number(offset) + length),
    close: () => {},
  })
  t.same(readElf(file(exe(LD)), x86), { ok: true, interp: LD })
  t.same(readElf(file(exe()), x86), { ok: true, interp: null })
  t.same(readElf(file(craftElf({ class: 32, machine: EM_386, interpreter: '/lib/ld-linux.so.2' })), ARCHES.i686), { ok: true, interp: '/lib/ld-linux.so.2' })
  t.same(readElf(file(exe(LD)), ARCHES.aarch64), { ok: false, wrongArch: true })
  // Another class or byte order: another kind of machine as well.
  t.same(readElf(file(exe(LD)), ARCHES.i686), { ok: false, wrongArch: true })
  t.same(readElf(file(exe(LD)), ARCHES.s390x), { ok: false, wrongArch: true })
  const badClass = exe(LD)
  badClass[4] = 3
  t.same(readElf(file(badClass), x86), { ok: false, wrongArch: false }, 'an identity no machine has is just bad')
  const failing: HostFile = { read: () => ({ errno: 'EIO' }), close: () => {} }
  t.same(readElf(failing, x86), { ok: false, wrongArch: false })
  // An interpreter segment that is not first among the program headers still counts.
  const later = craftElf({ machine: EM_X86_64, interpreter: LD, segments: [{ type: PT_LOAD }], editSegments: (s) => void s.reverse() })
  t.equal(later.readUInt32LE(64), PT_LOAD)
  t.same(readElf(file(later), x86), { ok: true, interp: LD })
})

// ---------------------------------------------------------------------------
// --argv0 and argc == 0.

t.test('--argv0 only when configured, supported and there is an argv[0]', async (t) => {
  const tree = (argv0: boolean) => build(t.testdir(), { [LD]: loader(argv0), '/usr/bin/toolbox': exe(LD) })
  const ld = `/run/host${LD}`
  const lp = '/run/host/lib64'
  t.same(ran(plan(tree(true))).argv, viaLoader(ld, lp, '/run/host/usr/bin/toolbox'))
  t.same(ran(plan(tree(false))).argv, viaLoader(ld, lp, '/run/host/usr/bin/toolbox', ['list', '-c'], null))
  t.same(ran(plan(tree(true), { argv0: false })).argv, viaLoader(ld, lp, '/run/host/usr/bin/toolbox', ['list', '-c'], null))
  // An empty argv[0] is still an argv[0].
  t.same(ran(plan(tree(true), {}, { argv: [''] })).argv, viaLoader(ld, lp, '/run/host/usr/bin/toolbox', [], ''))
  // argc == 0: no --argv0, no arguments.
  t.same(ran(plan(tree(true), {}, { argv: [] })).argv, [ld, '--inhibit-cache', '--library-path', lp, '/run/host/usr/bin/toolbox'])
  const direct = build(t.testdir(), { '/usr/bin/toolbox': exe() })
  t.same(plan(direct, {}, { argv: [] }), okPlan('container', null, null, '/run/host/usr/bin/toolbox', []))
  t.equal(formatDebug(config(), plan(direct, {}, { argv: [] })).split('\n').length, 6)
})

// ---------------------------------------------------------------------------
// The library path.

/** A minimal host: the loader in /lib64 (which is then the only standard directory). */
function lpOf(dir: string, spec: Spec, over: Partial<ShimConfig> = {}): string | null {
  const root = build(dir, { [LD]: loader(), '/usr/bin/toolbox': exe(LD), ...spec })
  const p = plan(root, over)
  if (!p.ok) throw new Error(p.message)
  return p.libraryPath
}

const dirs = (...names: string[]): Spec => Object.fromEntries(names.map((n) => [n, { dir: true }]))
const lpString = (...names: string[]) => names.map((n) => (n === '/' ? '/run/host/' : `/run/host${n}`)).join(':')

t.test('ld.so.conf syntax', async (t) => {
  const conf = [
    '# a comment',
    '   /opt/a   # trailing comment',
    '\t/opt/b/\t',
    '/opt/c//',
    'hwcap 1 /opt/hw',
    'opt/relative',
    '/opt/missing',
    '/opt/file',
    '/opt/co:lon',
    '/opt/a',
    '/opt/link',
    'include\t/etc/inc/one.conf   /etc/inc/two.conf\t',
    'include',
    'includes /opt/x',
    'INCLUDE /etc/inc/three.conf',
    '/opt/d\r',
    '\v\f/opt/e',
    '#/opt/f',
    '/opt/g#/opt/h',
    '',
  ].join('\n')
  t.equal(
    lpOf(t.testdir(), {
      ...dirs('/opt/a', '/opt/b', '/opt/c', '/opt/hw', '/opt/co:lon', '/opt/d', '/opt/e', '/opt/f', '/opt/g', '/opt/h', '/opt/one', '/opt/two', '/opt/three', '/opt/x'),
      '/opt/file': 'x',
      '/opt/link': { link: 'a' },
      '/etc/ld.so.conf': conf,
      '/etc/inc/one.conf': '/opt/one\n',
      '/etc/inc/two.conf': '/opt/two',
      '/etc/inc/three.conf': '/opt/three',
    }),
    lpString('/lib64', '/opt/a', '/opt/b', '/opt/c', '/opt/one', '/opt/two', '/opt/d', '/opt/e', '/opt/g'),
  )
})

t.test('include: relative to the including file as named, nesting, cycles', async (t) => {
  t.equal(
    lpOf(t.testdir(), {
      ...dirs('/opt/a', '/opt/x', '/opt/etc', '/opt/share'),
      // /etc/ld.so.conf is a link: its includes are still relative to /etc.
      '/etc/ld.so.conf': { link: '/usr/share/ldconf/main.conf' },
      '/usr/share/ldconf/main.conf': 'include rel.conf\ninclude conf.d/*.conf\n',
      '/usr/share/ldconf/rel.conf': '/opt/share\n',
      '/etc/rel.conf': '/opt/etc\n',
      '/etc/conf.d/a.conf': 'include sub/*.conf\n/opt/a\n',
      '/etc/conf.d/sub/x.conf': '/opt/x\n',
      // A cycle ends at the nesting limit.
      '/etc/conf.d/self.conf': 'include self.conf\n',
    }),
    lpString('/lib64', '/opt/etc', '/opt/x', '/opt/a'),
  )

  // /etc/ld.so.conf is depth 0; depth 8 is read, depth 9 is not.
  const chain: Spec = { '/etc/ld.so.conf': 'include d/1.conf\n/opt/d0\n' }
  for (let i = 1; i <= 10; i++) {
    chain[`/etc/d/${i}.conf`] = `include ${i + 1}.conf\n/opt/d${i}\n`
    chain[`/opt/d${i}`] = { dir: true }
  }
  t.equal(
    lpOf(t.testdir(), { ...chain, '/opt/d0': { dir: true } }),
    lpString('/lib64', '/opt/d8', '/opt/d7', '/opt/d6', '/opt/d5', '/opt/d4', '/opt/d3', '/opt/d2', '/opt/d1', '/opt/d0'),
  )
})

t.test('include patterns: last component only, byte order, no dot files', async (t) => {
  const spec: Spec = {
    ...dirs('/opt/B', '/opt/a', '/opt/b', '/opt/z', '/opt/hidden', '/opt/txt', '/opt/x', '/opt/q', '/opt/top', '/etc/g/dir.conf'),
    '/etc/g/a.conf': '/opt/a\n',
    '/etc/g/b.conf': '/opt/b\n',
    '/etc/g/B.conf': '/opt/B\n',
    '/etc/g/z.conf': '/opt/z\n',
    '/etc/g/.hidden.conf': '/opt/hidden\n',
    '/etc/g/c.txt': '/opt/txt\n',
    '/etc/g/sub/x.conf': '/opt/x\n',
    '/etc/g/q?.conf': '/opt/q\n',
    '/top.conf': '/opt/top\n',
  }
  const lp = (conf: string) => lpOf(t.testdir(), { ...spec, '/etc/ld.so.conf': conf })
  t.equal(lp('include /etc/g/*.conf'), lpString('/lib64', '/opt/B', '/opt/a', '/opt/b', '/opt/q', '/opt/z'))
  t.equal(lp('include /etc/g/.*.conf'), lpString('/lib64', '/opt/hidden'))
  t.equal(lp('include /etc/g/[ab].conf /etc/g/?.txt'), lpString('/lib64', '/opt/a', '/opt/b', '/opt/txt'))
  t.equal(lp('include /etc/g/[!a-z]*'), lpString('/lib64', '/opt/B'))
  // A pattern in an earlier component names nothing.
  t.equal(lp('include /etc/*/a.conf /etc/g/*/x.conf'), lpString('/lib64'))
  // Without wildcards the path is read as it is; a \ is literal there, a quote in a pattern.
  t.equal(lp('include /etc/g/c.txt /etc/g/q\\?.conf'), lpString('/lib64', '/opt/txt', '/opt/q'))
  t.equal(lp('include /*.conf'), lpString('/lib64', '/opt/top'))
  t.equal(lp('include /etc/none/*.conf /etc/g/c.txt/*.conf'), lpString('/lib64'))
})

t.test('include limits: 256 matches in directory order, then 64 files read in all', async (t) => {
  const spec: Spec = { '/opt/a': { dir: true }, '/opt/b': { dir: true }, '/etc/ld.so.conf': 'include /etc/m/*\n' }
  for (let i = 0; i < 300; i++) spec[`/etc/m/${String(i).padStart(3, '0')}`] = ''
  const root = build(t.testdir(), { [LD]: loader(), '/usr/bin/toolbox': exe(LD), ...spec })
  // Which 256 names are taken depends on the directory's own order, as in the shim;
  // they are read sorted, and /etc/ld.so.conf itself is the first of the 64 files.
  const taken = (nodeHostView(root).readdir('/etc/m') as string[]).slice(0, 256).sort()
  fs.writeFileSync(join(root, 'etc/m', taken[62] as string), '/opt/a\n')
  fs.writeFileSync(join(root, 'etc/m', taken[63] as string), '/opt/b\n')
  t.equal(ran(plan(root)).libraryPath, lpString('/lib64', '/opt/a'))
})

t.test('64 KiB of each file, up to its first NUL', async (t) => {
  const big = `${'#'.repeat(65520)}\n/opt/in\n/opt/out\n`
  t.equal(Buffer.byteLength(big.slice(0, 65529)), 65529)
  t.equal(
    lpOf(t.testdir(), { ...dirs('/opt/in', '/opt/ou', '/opt/out', '/opt/a', '/opt/b', '/opt/c'), '/etc/ld.so.conf': `${big}include nul.conf\n`, '/etc/nul.conf': '/opt/a\n/opt/b\0junk\n/opt/c\n' }),
    lpString('/lib64', '/opt/in', '/opt/ou'),
  )
  t.equal(
    lpOf(t.testdir(), { ...dirs('/opt/a', '/opt/b', '/opt/c'), '/etc/ld.so.conf': 'include nul.conf\n', '/etc/nul.conf': '/opt/a\n/opt/b\0junk\n/opt/c\n' }),
    lpString('/lib64', '/opt/a', '/opt/b'),
  )
  // Files that cannot be read are skipped: a directory, a fifo, a dangling link.
  t.equal(
    lpOf(t.testdir(), {
      ...dirs('/opt/a', '/etc/x/d.conf'),
      '/etc/ld.so.conf': 'include x/*.conf\n/opt/a\n',
      '/etc/x/f.conf': { fifo: true },
      '/etc/x/l.conf': { link: 'nowhere' },
    }),
    lpString('/lib64', '/opt/a'),
  )
  t.equal(lpOf(t.testdir(), { '/etc/ld.so.conf': { dir: true } }), lpString('/lib64'))
})

t.test('library path entries: resolved, directories only, no ":", first kept, 128 at most', async (t) => {
  t.equal(
    lpOf(
      t.testdir(),
      {
        ...dirs('/opt/a', '/opt/extra', '/usr/lib', '/usr/lib64', '/lib/x86_64-linux-gnu', '/opt/co:lon'),
        '/etc/ld.so.conf': '/\n/..\n/opt/a/../a\n/lib64\n/opt/link\n',
        '/opt/link': { link: '/usr/lib64' },
      },
      { libDirs: ['/opt/extra', '/opt/missing', '/opt/a', '/opt/co:lon'] },
    ),
    lpString('/lib64', '/', '/opt/a', '/usr/lib64', '/lib/x86_64-linux-gnu', '/lib', '/usr/lib', '/opt/extra'),
  )
  const many: Spec = { '/etc/ld.so.conf': Array.from({ length: 200 }, (_, i) => `/opt/n${i}`).join('\n') }
  for (let i = 0; i < 200; i++) many[`/opt/n${i}`] = { dir: true }
  const lp = lpOf(t.testdir(), { ...many, '/opt/extra': { dir: true } }, { libDirs: ['/opt/extra'] }) as string
  const entries = lp.split(':')
  t.equal(entries.length, LIMITS.libraryPathEntries)
  t.equal(entries[0], '/run/host/lib64')
  t.equal(entries[127], '/run/host/opt/n126')

  // A host root with ":" keeps nothing: the loader still runs, with an empty library path.
  const root = build(t.testdir(), { [LD]: loader(), '/usr/bin/toolbox': exe(LD) })
  const p = plan(root, { hostRoot: '/run/ho:st' })
  t.same(p, okPlan('container', `/run/ho:st${LD}`, '', `/run/ho:st${LD}`, viaLoader(`/run/ho:st${LD}`, '', '/run/ho:st/usr/bin/toolbox')))
  t.match(formatDebug(config(), p), /\ntoolbox: library-path: \ntoolbox: exec: /)
})

// ---------------------------------------------------------------------------
// Output: debug lines, bytes, messages, JSON, environment.

t.test('debug escaping and bytes that are not UTF-8', async (t) => {
  t.equal(escapeDebug('plain ~ text'), 'plain ~ text')
  t.equal(escapeDebug('a\nb\\c\td\x7f\x1fé'), 'a\\x0ab\\x5cc\\x09d\\x7f\\x1f\\xc3\\xa9')
  const root = build(t.testdir(), { '/usr/bin/toolbox': { link: Buffer.from('/opt/\xff\n/toolbox', 'latin1') } })
  fs.mkdirSync(Buffer.concat([Buffer.from(root), Buffer.from('/opt/\xff\n', 'latin1')]), { recursive: true })
  fs.writeFileSync(Buffer.concat([Buffer.from(root), Buffer.from('/opt/\xff\n/toolbox', 'latin1')]), exe(), { mode: 0o755 })
  const p = plan(root, {}, { argv: ['tool\\box', 'é'] })
  t.same(p, okPlan('container', null, null, '/run/host/opt/\udcff\n/toolbox', ['tool\\box', 'é']))
  t.same(toHostBytes(ran(p).exec), Buffer.from('/run/host/opt/\xff\n/toolbox', 'latin1'))
  t.equal(
    formatDebug(config(), p),
    'toolbox: mode: container\ntoolbox: plan: computed (no XDG_RUNTIME_DIR)\ntoolbox: loader: -\ntoolbox: library-path: -\ntoolbox: exec: /run/host/opt/\\xff\\x0a/toolbox\n' +
      'toolbox: argv[0]: tool\\x5cbox\ntoolbox: argv[1]: \\xc3\\xa9\n',
  )
  // Messages are not escaped: the shim writes the path's bytes as they are.
  fs.chmodSync(Buffer.concat([Buffer.from(root), Buffer.from('/opt/\xff\n/toolbox', 'latin1')]), 0o644)
  const bad = plan(root)
  // Escaped like debug output: a newline in a path cannot forge a second message.
  t.same(toHostBytes(formatDebug(config(), bad)), Buffer.from('toolbox: cannot run target: /run/host/opt/\\xff\\x0a/toolbox: Permission denied\n', 'latin1'))
})

t.test('a stderr line is cut at 12287 bytes', async (t) => {
  const root = build(t.testdir(), { '/usr/bin/toolbox': exe() })
  const lines = formatDebug(config(), plan(root, {}, { argv: ['toolbox', '\n'.repeat(5000), 'a'.repeat(20000)] })).split('\n')
  t.ok(lines[6] === `toolbox: argv[1]: ${'\\x0a'.repeat(3067)}\\`, 'cut inside an escape')
  t.equal(lines[6]?.length, LIMITS.lineBytes)
  t.ok(lines[7] === `toolbox: argv[2]: ${'a'.repeat(LIMITS.lineBytes - 18)}`, 'cut')
  t.same(lines.slice(8), [''])
})

t.test('host bytes round trip', async (t) => {
  t.equal(fromHostBytes(Buffer.from('/usr/lib/é😀')), '/usr/lib/é😀')
  t.equal(fromHostBytes(Buffer.from([0xc0, 0x80, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xe2, 0x82])), '\udcc0\udc80\udced\udca0\udc80\udcf4\udc90\udc80\udc80\udce2\udc82')
  t.same(toHostBytes('a\udcffb'), Buffer.from([0x61, 0xff, 0x62]))
  t.equal(hostString('é'), '\xc3\xa9')
  t.equal(jsString('\xc3\xa9\xff'), 'é\udcff')
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => Buffer.from(bytes).equals(toHostBytes(fromHostBytes(bytes)))))
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (text) => fromHostBytes(toHostBytes(text)) === text))
})

t.test('failures: message, exit code, JSON', async (t) => {
  const root = build(t.testdir(), {})
  const p = plan(root)
  t.same(p, failPlan('targetMissing', '/run/host/usr/bin/toolbox', 'ENOENT'))
  t.equal(formatDebug(config(), p), 'toolbox: cannot find target: /run/host/usr/bin/toolbox: No such file or directory\n')
  t.same(planToJson(p), {
    mode: 'container',
    exitCode: 127,
    errno: 'ENOENT',
    message: 'toolbox: cannot find target: /run/host/usr/bin/toolbox: No such file or directory',
  })
  t.same(plan(root, {}, { secure: true }), {
    ok: false,
    mode: 'container',
    exitCode: 126,
    errno: 'EPERM',
    what: 'secure',
    path: '/usr/bin/toolbox',
    message: 'toolbox: refusing to run privileged: /usr/bin/toolbox: Operation not permitted',
  })
})

t.test('environment: configured variables replace the caller\'s and go last', async (t) => {
  const c = config({ env: [['LANG', 'C.UTF-8'], ['TOOLBOX_SHIM', '1']] })
  const env = ['PATH=/usr/bin', 'LANG=de_DE.UTF-8', 'LANGUAGE=de', 'NOEQUALS', 'LANG=again', 'HOSTSHIM_DEBUG=']
  t.same(execEnvironment(c, env), ['PATH=/usr/bin', 'LANGUAGE=de', 'NOEQUALS', 'HOSTSHIM_DEBUG=', 'LANG=C.UTF-8', 'TOOLBOX_SHIM=1'])
  t.same(execEnvironment(config(), env), env)
  t.equal(debugEnabled(c, env), true)
  t.equal(debugEnabled(c, ['HOSTSHIM_DEBUGX=1', 'HOSTSHIM_DEBUG']), false)
  const root = build(t.testdir(), { '/usr/bin/toolbox': exe() })
  const p = planShim(c, x86, nodeHostView(root), { mode: 'container', argv: ['toolbox'], env })
  t.same(ran(p).env, execEnvironment(c, env))
  t.same(planToJson(p), { mode: 'container', plan: NO_CACHE, loader: null, libraryPath: null, exec: '/run/host/usr/bin/toolbox', argv: ['toolbox'], env: execEnvironment(c, env) })
})

t.test('the work budget bounds a hostile ld.so.conf, never the target or the loader', async (t) => {
  // Each "/l0" line is a 40-link chain to nothing: 1 + 41 lstats + the call.
  const spec = (lines: number): Spec => {
    const s: Spec = { ...fedora, '/usr/bin/toolbox': exe(LD), '/etc/ld.so.conf': `${'/l0\n'.repeat(lines)}/usr/lib64/dyninst\n` }
    for (let i = 0; i < 40; i++) s[`/l${i}`] = { link: `/l${i + 1}` }
    s['/l40'] = { link: '/nothing' }
    return s
  }
  const few = ran(plan(build(t.testdir(), spec(100))))
  t.equal(few.libraryPath, FEDORA_LP, '100 such lines: everything after them is still there')
  const many = ran(plan(build(t.testdir(), spec(7000))))
  t.equal(many.libraryPath, '/run/host/usr/lib64', '7000: the budget runs out, only the loader\'s directory (resolved before) is kept')
  t.equal(many.loader, FEDORA_LD, 'the loader is found as ever')
  // Spent, resolution fails with ELOOP, and stays spent.
  const budget = new WorkBudget(3)
  const view = nodeHostView(build(t.testdir(), { '/a/b/c': 'x' }))
  t.same(resolveInRoot(view, '', '/a/b/c', budget), { errno: 'ELOOP' }, '1 for the call, 1 per lstat: 3 units do not reach /a/b/c')
  t.same(resolveInRoot(view, '', '/', budget), { errno: 'ELOOP' })
  t.equal(isHostErr(resolveInRoot(view, '', '/a/b/c', new WorkBudget(4))), false, '4 do')
})

t.test('matchName is glob(3) on one name', async (t) => {
  const cases: [string, string, boolean][] = [
    ['*.conf', 'a.conf', true],
    ['*.conf', 'a.conf~', false],
    ['*.conf', '.a.conf', false],
    ['.*', '.a', true],
    ['*', '.', false],
    ['?', '', false],
    ['?', 'ab', false],
    ['', '', true],
    ['', 'a', false],
    ['**', '', true],
    ['*a*b', 'xaybz', false],
    ['*a*b', 'xayb', true],
    ['[ab]', 'a', true],
    ['[ab]', 'c', false],
    ['[!ab]', 'a', false],
    ['[^ab]', 'c', true],
    ['[]a]', ']', true],
    ['[!]]', ']', false],
    ['[a-c]', 'b', true],
    ['[c-a]', 'b', false],
    ['[a-]', '-', true],
    ['[\\]', '\\', true],
    ['[', '[', true],
    ['[ab', '[ab', true],
    ['[!', '[!', true],
    // Unclosed, a set is a literal "[", unless the pattern ends in the middle
    // of a range: glibc's fnmatch then never matches (found by the fuzzer).
    ['[a-z', '[a-z', true],
    ['[a--', '[a--', true],
    ['[a-', '[a-', false],
    ['[--', '[--', false],
    ['*[a-', 'x[a-', false],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    // A lone "\\" at the end matches nothing, as in glibc's fnmatch.
    ['a\\', 'a\\', false],
    // An escaped leading dot is a dot, as in glibc (FNM_PERIOD).
    ['\\.x', '.x', true],
    ['\\.*', '.x', true],
    ['?x', '.x', false],
    ['[\x80-\xff]', '\xe9', true],
    ['[.]*', '.x', false],
  ]
  for (const [pattern, name, want] of cases) t.equal(matchName(pattern, name), want, `${JSON.stringify(pattern)} ${JSON.stringify(name)}`)
  // Linear, not exponential in the number of "*": this took minutes with backtracking into every "*".
  const started = process.hrtime.bigint()
  t.equal(matchName('*a'.repeat(40) + 'b', 'a'.repeat(255)), false)
  t.equal(matchName('*a'.repeat(40) + '*', 'a'.repeat(255)), true)
  t.ok(process.hrtime.bigint() - started < 1_000_000_000n, 'in well under a second')
})

t.test('detectMode and the view of the real /', async (t) => {
  const dir = t.testdir()
  t.equal(detectMode(dir), 'container')
  t.equal(detectMode(join(dir, 'missing')), 'host')
  fs.writeFileSync(join(dir, 'file'), '')
  t.equal(detectMode(join(dir, 'file')), 'host')
  fs.symlinkSync('/', join(dir, 'host'))
  t.equal(detectMode(join(dir, 'host')), 'host')
  t.equal(detectMode('/'), 'host')

  const native = nativeArch()
  const env = '/usr/bin/env'
  if (native === undefined || !fs.existsSync(env)) {
    t.comment('skipped: no known native architecture or no /usr/bin/env')
    return
  }
  const p = planShim(config({ target: env }), ARCHES[native], nodeHostView('/'), { mode: 'host', argv: ['env'] })
  // A normal host binary on the host: exec'd directly, by its real path.
  t.same(p, okPlan('host', null, null, fs.realpathSync(env), ['env']))
})

t.test('the view reports errors as errno names', async (t) => {
  const root = build(t.testdir(), { '/f': 'x', '/l': { link: 'f' } })
  const view = nodeHostView(`${root}/`)
  t.same(view.lstat('/missing'), { errno: 'ENOENT' })
  t.same(view.stat('/f/x'), { errno: 'ENOTDIR' })
  t.same(view.readlink('/f'), { errno: 'EINVAL' })
  t.same(view.open('/missing'), { errno: 'ENOENT' })
  t.same(view.readdir('/f'), { errno: 'ENOTDIR' })
  t.equal(view.executable('/f'), false)
  const dir = view.open('/')
  if (isHostErr(dir)) throw new Error('cannot open the root')
  t.same(dir.read(0n, 10), { errno: 'EISDIR' })
  dir.close()
  t.same(view.stat('/l'), { ...(view.stat('/f') as object) })
})

t.test('errors only a view can inject, and odd corners', async (t) => {
  const root = build(t.testdir(), {
    ...fedora,
    '/etc/ld.so.conf': `include ld.so.conf.d/*.conf\ninclude more/*.conf\n/${'l'.repeat(4095)}\ninclude /${'p/'.repeat(2048)}\ninclude ${'r/'.repeat(2046)}\n`,
    '/etc/more/x.conf': '/usr/lib64/dyninst\n',
    '/usr/bin/toolbox': exe(LD),
    '/usr/bin/link': { link: 'toolbox' },
    '/usr/bin/rootld': exe('/ld.so'),
    '/ld.so': loader(),
  })
  const view = nodeHostView(root)
  const withView = (over: Partial<HostView>, c: Partial<ShimConfig> = {}) =>
    planShim(config(c), x86, { ...view, ...over }, { mode: 'container', argv: ['toolbox', 'list', '-c'] })
  // Unreadable but executable (only root can read anything).
  t.same(withView({ open: (p) => (p === '/usr/bin/toolbox' ? { errno: 'EACCES' } : view.open(p)) }), failPlan('targetBad', '/run/host/usr/bin/toolbox', 'EACCES'))
  t.same(withView({ readlink: () => ({ errno: 'EIO' }) }, { target: '/usr/bin/link' }), failPlan('targetMissing', '/run/host/usr/bin/link', 'EIO'))
  // Unreadable ld.so.conf files and directories are skipped; so are over-long lines and patterns.
  t.equal(ran(withView({})).libraryPath, FEDORA_LP)
  t.equal(ran(withView({ readdir: () => ({ errno: 'EACCES' }) })).libraryPath, '/run/host/usr/lib64:/run/host/usr/lib')
  t.equal(ran(withView({ open: (p) => (p.startsWith('/etc/') ? { errno: 'EACCES' } : view.open(p)) })).libraryPath, '/run/host/usr/lib64:/run/host/usr/lib')
  // A loader that cannot be read through: no --argv0, but it runs.
  const opened = withView({
    open: (p) => {
      const file = view.open(p)
      if (isHostErr(file) || !p.endsWith('.so.2')) return file
      let reads = 0
      return { read: (o, n) => (++reads > 2 ? { errno: 'EIO' } : file.read(o, n)), close: () => file.close() }
    },
  })
  t.same(ran(opened).argv, viaLoader(FEDORA_LD, FEDORA_LP, '/run/host/usr/bin/toolbox', ['list', '-c'], null))
  // A loader in the root directory: the library path starts with the root.
  t.equal(ran(withView({}, { target: '/usr/bin/rootld' })).libraryPath, '/run/host/:/run/host/usr/lib64/dyninst:/run/host/usr/lib64:/run/host/usr/lib')
  // An error that is not an errno is a bug, not a plan.
  t.throws(() => withView({ lstat: () => { throw new TypeError('boom') } }), TypeError)
  // The library path of a direct exec is "-" even if a caller builds such a plan by hand.
  t.match(formatDebug(config(), { ok: true, mode: 'host', plan: 'computed (no XDG_RUNTIME_DIR)', loader: '/ld', libraryPath: null, exec: '/ld', argv: [], env: null }), /library-path: \n/)
})

t.test('a path that ends in a link to "." or "..": the directory it names, not the link', async (t) => {
  const root = build(t.testdir(), {
    '/usr/bin/tool': exe(),
    '/usr/bin/dot': { link: '.' },
    '/usr/bin/up': { link: '..' },
    '/usr/bin/updot': { link: '../bin/dot' },
    '/usr/bin/chain': { link: 'up' },
    '/usr/local/lib/self': { link: '.' },
    '/usr/local/lib/parent': { link: '..' },
    '/usr/local/lib/selfself': { link: 'self' },
    [LD]: loader(),
    '/usr/lib/stuff': { dir: true },
    '/usr/lib/stuff/dot': { link: '.' },
    '/etc/ld.so.conf': '/usr/lib/stuff/dot\n/usr/local/lib/parent\n',
    '/lib64/up': { link: '..' },
  })
  const view = nodeHostView(root)
  const path = (p: string) => {
    const r = resolveInRoot(view, '/run/host', p)
    return isHostErr(r) ? r.errno : [r.path, r.stat.kind]
  }
  // Every way of ending at a directory through a link: the directory's own stat.
  for (const [p, want] of [
    ['/usr/bin/dot', '/usr/bin'],
    ['/usr/bin/up', '/usr'],
    ['/usr/bin/updot', '/usr/bin'],
    ['/usr/bin/chain', '/usr'],
    ['/usr/bin/dot/dot/up', '/usr'],
    ['/usr/local/lib/selfself', '/usr/local/lib'],
    ['/usr/bin/up/..', '/'],
  ] as const) {
    t.same(path(p), [want, 'dir'], `${p} is the directory ${want}`)
  }
  // As a target: a directory (EISDIR), not a link (EACCES).
  t.same(plan(root, { target: '/usr/bin/dot' }), failPlan('targetBad', '/run/host/usr/bin', 'EISDIR'))
  t.same(plan(root, { target: '/usr/bin/chain' }), failPlan('targetBad', '/run/host/usr', 'EISDIR'))
  // As a loader, through the PT_INTERP.
  build(root, { '/usr/bin/toolbox': exe('/lib64/up') })
  t.same(plan(root), failPlan('loaderBad', '/run/host/', 'EISDIR'))
  // As library directories: -L dirs and ld.so.conf lines.
  build(root, { '/usr/bin/toolbox': exe(LD) })
  const lp = ran(plan(root, { libDirs: ['/usr/local/lib/self', '/usr/local/lib/selfself'] })).libraryPath
  t.same(lp?.split(':'), ['/run/host/lib64', '/run/host/usr/lib/stuff', '/run/host/usr/local', '/run/host/usr/lib', '/run/host/usr/local/lib'])
})

// ---------------------------------------------------------------------------
// $ORIGIN targets: next to the shim, in the caller's own view.

t.test('$ORIGIN targets are found in the caller\'s view, loader and libraries under the host root', async (t) => {
  const dir = t.testdir()
  const host = build(join(dir, 'host'), {
    [LD]: loader(),
    '/usr/lib64': { dir: true },
    // The host has a file at the build directory's path too: it must not be the one taken.
    '/home/u/build/prog': exe(),
  })
  const caller = build(join(dir, 'caller'), {
    '/home/u/build/prog': exe(LD),
    '/home/u/build/libexec': { link: 'real' },
    '/home/u/build/real/helper': exe(LD),
    '/home/u/build/static': exe(),
    '/home/u/build/toolbox-built': exe(`/run/host${LD}`),
  })
  const callerView = nodeHostView(caller)
  const where = { origin: '/home/u/build', callerView }
  const lp = '/run/host/lib64:/run/host/usr/lib64'
  const ld = `/run/host${LD}`
  const origin = (target: string, opts: Partial<PlanOptions> = {}) => plan(host, { target }, { ...where, ...opts })

  t.same(origin('$ORIGIN/prog'), okPlan('container', ld, lp, ld, viaLoader(ld, lp, '/home/u/build/prog')), 'container: the caller\'s file, the host\'s loader')
  t.same(
    origin('$ORIGIN/../build/libexec/./helper'),
    okPlan('container', ld, lp, ld, viaLoader(ld, lp, '/home/u/build/real/helper')),
    '".." and links walked in the caller\'s view; the resolved path is passed on',
  )
  t.same(origin('$ORIGIN/prog', { origin: '/home/u/build/' }), origin('$ORIGIN/prog'), 'a trailing "/" on the origin changes nothing')
  t.same(origin('$ORIGIN/static'), okPlan('container', null, null, '/home/u/build/static', ['toolbox', 'list', '-c']), 'static: exec\'d directly')
  t.same(
    origin('$ORIGIN/prog', { mode: 'host' }),
    okPlan('host', null, null, '/home/u/build/prog', ['toolbox', 'list', '-c']),
    'host mode: run directly, as an absolute target would be',
  )
  const hostLd = LD
  t.same(
    origin('$ORIGIN/toolbox-built', { mode: 'host' }),
    okPlan('host', hostLd, '/lib64:/usr/lib64', hostLd, viaLoader(hostLd, '/lib64:/usr/lib64', '/home/u/build/toolbox-built')),
    'host mode: PT_INTERP under the host root goes through the host loader',
  )
  t.same(origin('$ORIGIN/missing'), failPlan('targetMissing', '/home/u/build/missing', 'ENOENT'), 'missing: the caller\'s path, no host root in front')
  t.same(origin('$ORIGIN/prog', { origin: null }), failPlan('originMissing', '/proc/self/exe', 'ENOENT'), 'no /proc: 127 and a message that says so')
  t.match(failed(origin('$ORIGIN/prog', { origin: null })).message, /mount \/proc/)
  const long = `$ORIGIN/${'x'.repeat(4085)}`
  const cut = `/home/u/build/${'x'.repeat(4085)}`.slice(0, 4095)
  t.same(origin(long), failPlan('targetMissing', cut, 'ENAMETOOLONG'), 'origin + REL over 4095 bytes: ENAMETOOLONG, the path cut')
  t.throws(() => plan(host, { target: '$ORIGIN/prog' }), /needs opts.origin and opts.callerView/, 'a caller that forgets the origin is a bug, not a plan')
  // requireHostRoot: the shim's own directory first (it is the plan cache's key), then the
  // missing host root, as for any target; the target itself only after that.
  t.same(origin('$ORIGIN/missing', { mode: 'host' }).ok, false)
  const imagesOnly = (target: string, opts: Partial<PlanOptions> = {}) => failed(plan(host, { target, requireHostRoot: true }, { ...where, mode: 'host', ...opts }))
  t.equal(imagesOnly('$ORIGIN/missing').what, 'noHostRoot', 'requireHostRoot: the missing host root before the target')
  t.equal(imagesOnly('$ORIGIN/prog').what, 'noHostRoot', 'requireHostRoot: the missing host root, the target found or not')
  t.equal(imagesOnly('$ORIGIN/prog', { origin: null }).what, 'originMissing', 'requireHostRoot: no /proc comes first')
  t.equal(imagesOnly(long).what, 'targetMissing', 'requireHostRoot: a path asked for over 4095 bytes comes first')
})
