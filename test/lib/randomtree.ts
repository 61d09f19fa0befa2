// Random host trees for differential tests: the plan model against the real
// shim. A seed gives one tree (a TreeSpec) and a list of notes that say what
// was chosen, so a failure can be read and rerun.
//
// The trees mix the distributions' layouts (Debian with absolute or relative
// loader links and usr-merge or not, Fedora, Arch, old Toolbx mounts with only
// /usr), ld.so.conf files with includes, globs, comments, hwcap lines and odd
// directories, broken or missing pieces, link loops and chains around the
// kernel's limit, Toolbx-style PT_INTERP under /run/host, and static targets.
//
// Nothing here is runnable by accident: loaders are fake (test/lib/hosttree.ts
// fakeLoader: the shim accepts them, execve() refuses them with EACCES) and
// static targets are busybox, which answers "NAME: applet not found".

import { EM_AARCH64, craftElf } from './elfcraft.js'
import { LD, fakeLoader, program, type RealFiles, type TreeEntry, type TreeSpec } from './hosttree.js'

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
export class Rng {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let x = this.state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }

  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T
  }

  chance(p: number): boolean {
    return this.next() < p
  }
}

/** The shims a tree may be run with (their fields: test/integration/differential.test.ts). */
export type ShimChoice = 'toolbox' | 'tb'
export const TARGETS: Readonly<Record<ShimChoice, string>> = { toolbox: '/usr/bin/toolbox', tb: '/usr/libexec/toolbox/toolbox' }

export interface RandomTree {
  readonly seed: number
  readonly spec: TreeSpec
  /** what was chosen, in order: for a failure message */
  readonly notes: readonly string[]
  readonly shim: ShimChoice
  readonly args: readonly string[]
  /** also run it with the tree as "/" (host mode) */
  readonly hostMode: boolean
}

const ODD_ARGS = ['', ' ', 'two words', 'new\nline', '--argv0', '--library-path', '-', 'café', '\t', '*', '$HOME', 'x'.repeat(300)]

/** Describe an entry in a few words, for notes. */
export function describeEntry(entry: TreeEntry): string {
  if ('dir' in entry) return 'dir'
  if ('link' in entry) return `-> ${JSON.stringify(entry.link.toString())}`
  if ('fifo' in entry) return 'fifo'
  if ('hardlink' in entry) return `hardlink ${entry.hardlink}`
  if ('sparse' in entry) return `sparse ${entry.sparse}`
  const bytes = typeof entry.file === 'string' ? Buffer.from(entry.file) : Buffer.from(entry.file)
  const head = bytes.subarray(0, 4).toString('latin1') === '\x7fELF' ? `ELF ${bytes.length} B` : JSON.stringify(bytes.toString('latin1').slice(0, 200))
  return `${head}${entry.mode === undefined ? '' : ` mode ${entry.mode.toString(8)}`}`
}

const LOADER_KINDS = ['fake', 'fake', 'fake', 'fake', 'fake-old', 'missing', 'dir', 'mode-0644', 'not-elf', 'foreign', 'truncated', 'loop', 'chain', 'dot-link'] as const
const TARGET_KINDS = ['dynamic', 'dynamic', 'dynamic', 'dynamic', 'toolbx', 'static', 'other-interp', 'broken', 'missing'] as const
const BROKEN_TARGETS = ['dir', 'mode-0644', 'not-elf', 'foreign', 'truncated', 'no-nul', 'empty-interp'] as const

/**
 * Choices a caller fixes instead of drawing them: the few trees of each run
 * that guarantee its mix (a failure of each kind, a run through the loader,
 * a static target, host mode), whatever the seed. The draws still happen,
 * so the rest of such a tree is what its seed gives.
 */
export interface TreePin {
  readonly loader?: (typeof LOADER_KINDS)[number]
  readonly target?: (typeof TARGET_KINDS)[number]
  readonly broken?: (typeof BROKEN_TARGETS)[number]
  /**
   * 'file': the target itself, not a link to it (a dangling link is another kind of missing);
   * 'dot-link': a link to "." or ".." (maybe through others), so a directory
   */
  readonly via?: 'file' | 'dot-link'
  readonly hostMode?: boolean
}

export function randomTree(seed: number, real: RealFiles, pin: TreePin = {}): RandomTree {
  const rng = new Rng(seed)
  const pinned = <T>(drawn: T, fixed: T | undefined): T => (fixed === undefined ? drawn : fixed)
  const spec: Record<string, TreeEntry> = {}
  const notes: string[] = []
  const note = (s: string) => notes.push(s)
  // Nothing is put below a link of the tree: where it landed would depend on the order of making.
  const put = (path: string, entry: TreeEntry) => {
    for (let at = path.indexOf('/', 1); at > 0; at = path.indexOf('/', at + 1)) {
      const above = spec[path.slice(0, at)]
      if (above !== undefined && !('dir' in above)) return
    }
    spec[path] = entry
  }
  // Directories that exist in the tree, for ld.so.conf lines and random links.
  const dirs: string[] = []
  const dir = (path: string) => {
    put(path, { dir: true })
    dirs.push(path)
  }
  // A link that names a directory as a path's last component: to "." or "..",
  // directly or through a chain of links (relative or absolute) that ends in one.
  const dotLinks: string[] = []
  const dotLink = (path: string) => {
    const parent = path.slice(0, path.lastIndexOf('/'))
    const last = rng.pick(['.', '..', '../.', './..'])
    const hops = rng.pick([0, 0, 1, 2, 3])
    let at = path
    for (let i = 1; i <= hops; i++) {
      const next = `${parent}/.dot${i}`
      put(at, { link: rng.chance(0.5) ? next : next.slice(parent.length + 1) })
      at = next
    }
    put(at, { link: last })
    dotLinks.push(path)
    note(`${path}: link to ${JSON.stringify(last)}${hops ? ` after ${hops} more` : ''}`)
  }

  // 1. The layout: where the loader and the libraries are, and the links to them.
  const layout = rng.pick(['debian', 'debian-merged', 'fedora', 'arch', 'partial', 'flat'] as const)
  const relLink = rng.chance(0.5)
  note(`layout ${layout}${layout.startsWith('debian') ? (relLink ? ' (relative loader link)' : ' (absolute loader link)') : ''}`)
  let loaderAt: string
  switch (layout) {
    case 'debian':
      loaderAt = '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'
      put(LD, { link: relLink ? '../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' : loaderAt })
      dir('/usr/lib/x86_64-linux-gnu')
      break
    case 'debian-merged':
      loaderAt = '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'
      put('/lib', { link: 'usr/lib' })
      put('/lib64', { link: 'usr/lib64' })
      put('/usr/lib64/ld-linux-x86-64.so.2', { link: relLink ? '../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' : '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' })
      break
    case 'fedora':
      loaderAt = '/usr/lib64/ld-linux-x86-64.so.2'
      put('/lib64', { link: 'usr/lib64' })
      put('/lib', { link: 'usr/lib' })
      dir('/usr/lib')
      break
    case 'arch':
      loaderAt = '/usr/lib/ld-linux-x86-64.so.2'
      put('/lib64', { link: 'usr/lib' })
      put('/usr/lib64', { link: 'lib' })
      put('/lib', { link: 'usr/lib' })
      break
    case 'partial':
      // Old Toolbx: only /usr (and /etc) of the host mounted; the loader at its usr-merged twin.
      loaderAt = '/usr/lib64/ld-linux-x86-64.so.2'
      dir('/usr/lib')
      break
    case 'flat':
      loaderAt = LD
      break
  }
  dirs.push(loaderAt.slice(0, loaderAt.lastIndexOf('/')))

  // 2. The loader itself: usually a fake that execve() refuses, sometimes broken or missing.
  const loaderKind = pinned(rng.pick(LOADER_KINDS), pin.loader)
  note(`loader ${loaderKind} at ${loaderAt}`)
  switch (loaderKind) {
    case 'fake':
      put(loaderAt, { file: fakeLoader(true) })
      break
    case 'fake-old':
      put(loaderAt, { file: fakeLoader(false) })
      break
    case 'missing':
      break
    case 'dir':
      put(loaderAt, { dir: true })
      break
    case 'mode-0644':
      put(loaderAt, { file: fakeLoader(), mode: 0o644 })
      break
    case 'not-elf':
      put(loaderAt, { file: '#!/bin/sh\n' })
      break
    case 'foreign':
      put(loaderAt, { file: craftElf({ machine: EM_AARCH64, type: 3, load: true }) })
      break
    case 'truncated':
      put(loaderAt, { file: fakeLoader().subarray(0, rng.pick([10, 63, 64, 100, 150])) })
      break
    case 'loop':
      put(loaderAt, { link: rng.pick([loaderAt.slice(loaderAt.lastIndexOf('/') + 1), LD, '/lib64/../lib64/ld-linux-x86-64.so.2']) })
      break
    case 'dot-link':
      dotLink(loaderAt)
      break
    case 'chain': {
      // Around the kernel's 40: the whole resolution counts, the layout's own links too.
      const n = 34 + rng.int(10)
      note(`chain of ${n} links`)
      put(loaderAt, { link: '/chain/l1' })
      for (let i = 1; i < n; i++) put(`/chain/l${i}`, { link: i + 1 < n ? (rng.chance(0.5) ? `l${i + 1}` : `/chain/l${i + 1}`) : '/real/ld.so' })
      put('/real/ld.so', { file: fakeLoader() })
      break
    }
  }

  // 3. The target: which shim, where its file is, what it is.
  const shim = rng.pick(['toolbox', 'toolbox', 'tb'] as const)
  const target = TARGETS[shim]
  const targetKind = pinned(rng.pick(TARGET_KINDS), pin.target)
  let content: TreeEntry | null
  switch (targetKind) {
    case 'missing':
      content = null
      break
    case 'dynamic':
      content = { file: program(LD) }
      break
    case 'toolbx':
      content = { file: program(`/run/host${LD}`) }
      break
    case 'static':
      content = { hardlink: real.busybox }
      break
    case 'other-interp': {
      const interp = rng.pick(['/lib/ld-linux-x86-64.so.2', '/usr/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', '/run/hostile/ld.so', '/lib32/ld.so', 'relative/ld.so', '/'])
      note(`PT_INTERP ${interp}`)
      content = { file: program(interp) }
      break
    }
    case 'broken': {
      const how = pinned(rng.pick(BROKEN_TARGETS), pin.broken)
      note(`broken target: ${how}`)
      content =
        how === 'dir'
          ? { dir: true }
          : how === 'mode-0644'
            ? { file: program(LD), mode: 0o644 }
            : how === 'not-elf'
              ? { file: 'not an ELF file\n' }
              : how === 'foreign'
                ? { file: craftElf({ machine: EM_AARCH64, interpreter: LD }) }
                : how === 'truncated'
                  ? { file: program(LD).subarray(0, 70) }
                  : how === 'no-nul'
                    ? { file: program(Buffer.from(LD)) }
                    : { file: program(new Uint8Array(0)) }
      break
    }
  }
  const via = pinned(rng.pick(['file', 'file', 'relative-link', 'absolute-link', 'dir-link', 'dot-link'] as const), pin.via)
  note(`target ${targetKind} at ${target} (${via})`)
  // A missing target: nothing at the end of the path (a link to it dangles).
  const putContent = (path: string) => content !== null && put(path, content)
  if (via === 'file') putContent(target)
  else if (via === 'dot-link') dotLink(target)
  else if (via === 'relative-link') {
    put(target, { link: target.startsWith('/usr/bin/') ? '../../opt/tb/bin/real' : '../../../opt/tb/bin/real' })
    putContent('/opt/tb/bin/real')
  } else if (via === 'absolute-link') {
    put(target, { link: '/opt/tb/bin/real' })
    putContent('/opt/tb/bin/real')
  } else {
    // The directory holding the target is a link.
    const parent = target.slice(0, target.lastIndexOf('/'))
    put(parent, { link: rng.chance(0.5) ? '/opt/tb/bin' : `${'../'.repeat(6)}opt/tb/bin` })
    putContent(`/opt/tb/bin${target.slice(target.lastIndexOf('/'))}`)
  }

  // 4. Library directories, some odd.
  for (const d of ['/usr/local/lib', '/opt/vendor/lib', '/usr/lib/extra', '/opt/c:d', '/opt/$ORIGIN', '/opt/semi;colon', '/opt/sp ace', '/usr/lib64/dyninst']) {
    if (rng.chance(0.35)) dir(d)
  }
  // The shims' -L dirs (test/integration/differential.test.ts), and others: links to a directory.
  for (const d of ['/opt/vendor/lib', '/usr/lib/extra', '/usr/local/lib/self']) {
    if (rng.chance(0.25)) dotLink(d)
  }
  if (rng.chance(0.2)) put('/opt/file-not-dir', { file: 'x', mode: 0o644 })
  if (rng.chance(0.2)) put('/opt/dirlink', { link: rng.pick(['/usr/local/lib', '../usr', '/opt/missing', 'dirlink']) })

  // 5. ld.so.conf.
  const confStyle = rng.pick(['debian', 'fedora', 'arch', 'none', 'random', 'random'] as const)
  note(`ld.so.conf ${confStyle}`)
  const conf = (path: string, text: string) => put(path, { file: text, mode: 0o644 })
  const randomLine = (): string => {
    const kind = rng.int(12)
    const d = dirs.length > 0 ? rng.pick(dirs) : '/usr/lib'
    switch (kind) {
      case 0:
      case 1:
        return d
      case 2:
        return `  ${d}//  # trailing slashes, blanks and a comment`
      case 3:
        return `\t${d}\t`
      case 4:
        return rng.pick(['/nope/lib', '/opt/file-not-dir', '/opt/dirlink', '/opt/dirlink/', '/opt/c:d', '/opt/$ORIGIN', '/opt/semi;colon', '/opt/sp ace'])
      case 5:
        return rng.pick(['# a comment', '', '   ', 'hwcap 0 nosegneg', 'HWCAP\tx', 'relative/dir', 'includes/not/an/include'])
      case 6:
        return `include ${rng.pick(['/etc/extra/*.conf', 'extra/?.conf', 'ld.so.conf.d/[a-m]*', '/etc/ld.so.conf.d/*', '/etc/*.conf', '/e/*'])}`
      case 7:
        return `include ${rng.pick(['/etc/ld.so.conf', 'ld.so.conf', '../etc/ld.so.conf'])}`
      case 8:
        return `include\t${rng.pick(['x.conf', '/etc/x.conf'])} ${rng.pick(['/etc/extra/a.conf', 'extra/b.conf'])}`
      case 9:
        return `${d}/../${d.split('/').pop() ?? ''}`
      case 10:
        return rng.chance(0.5) ? '/usr/lib\n/usr/lib\n/usr/lib/' : dotLinks.length > 0 ? rng.pick(dotLinks) : '/usr/local/lib/self'
      default:
        return `/opt/vendor/lib # shim A's libDir, maybe twice`
    }
  }
  const randomConf = (lines: number) =>
    `${Array.from({ length: lines }, randomLine).join(rng.chance(0.1) ? '\r\n' : '\n')}${rng.chance(0.8) ? '\n' : ''}`
  switch (confStyle) {
    case 'debian':
      conf('/etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n\n')
      conf('/etc/ld.so.conf.d/libc.conf', '# libc default configuration\n/usr/local/lib\n')
      conf('/etc/ld.so.conf.d/x86_64-linux-gnu.conf', '# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n')
      break
    case 'fedora':
      conf('/etc/ld.so.conf', 'include ld.so.conf.d/*.conf\n')
      conf('/etc/ld.so.conf.d/dyninst-x86_64.conf', '/usr/lib64/dyninst\n')
      break
    case 'arch':
      conf('/etc/ld.so.conf', '# Dynamic linker/loader configuration.\n# See ld.so(8) and ldconfig(8) for details.\n\ninclude /etc/ld.so.conf.d/*.conf\n')
      dir('/etc/ld.so.conf.d')
      break
    case 'none':
      break
    case 'random':
      conf('/etc/ld.so.conf', randomConf(1 + rng.int(8)))
      for (const f of ['/etc/ld.so.conf.d/a.conf', '/etc/ld.so.conf.d/n.conf', '/etc/ld.so.conf.d/.hidden.conf', '/etc/extra/a.conf', '/etc/extra/b.conf', '/etc/x.conf']) {
        if (rng.chance(0.4)) conf(f, randomConf(rng.int(6)))
      }
      if (rng.chance(0.2)) put('/etc/ld.so.conf.d/z.conf', { dir: true })
      if (rng.chance(0.2)) put('/e', { link: rng.pick(['/etc', 'etc/ld.so.conf.d', '/e']) })
      break
  }

  // 6. Loops and stray links anywhere.
  for (let i = rng.int(3); i > 0; i--) {
    const name = `/${rng.pick(['x', 'y', 'z'])}`
    const text = rng.pick(['/x', 'y', '/z/..', '/usr', '../..', '/proc/self/root/usr', '/lib64/../usr/lib', '.'])
    put(name, { link: text })
    note(`${name} -> ${text}`)
  }

  const args = Array.from({ length: rng.int(3) }, () => rng.pick(ODD_ARGS))
  const hostMode = pinned(rng.chance(0.3), pin.hostMode)
  if (Object.keys(pin).length > 0) note(`pinned ${JSON.stringify(pin)}`)
  return { seed, spec, notes, shim, args, hostMode }
}
