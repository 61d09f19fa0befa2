// Host trees for tests that run real shims: a spec (host path -> entry) made
// into a directory that bwrap then binds at /run/host.
//
// Entries are crafted ELF files (test/lib/elfcraft.ts), links with any text,
// directories, fifos, sparse files, and hard links to real files of this
// machine (its loader, libc, busybox), copied once per suite so that many
// trees can share them without touching the originals.

import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, linkSync, mkdirSync, openSync, closeSync, ftruncateSync, writeSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ARCHES } from '../../launcher/arch.js'
import { shimConfigOf, validateConfig, type ShimConfig, type ShimMode } from '../../launcher/config.js'
import { nodeHostView } from '../../launcher/hostview.js'
import { planShim, type Errno, type Mode, type Plan } from '../../launcher/plan.js'
import { EM_X86_64, ET_DYN, craftElf, type CraftOptions } from './elfcraft.js'
import type { ShimFields } from './shims.js'

export type TreeEntry =
  | { readonly dir: true }
  /** a regular file; mode 0755 unless given */
  | { readonly file: string | Uint8Array; readonly mode?: number }
  /** a symbolic link; the text may be any bytes but NUL */
  | { readonly link: string | Buffer }
  | { readonly fifo: true }
  /** a hard link to a file of the suite (see RealFiles) */
  | { readonly hardlink: string }
  /** `size` bytes, `head` at the start, a hole after it */
  | { readonly sparse: number; readonly head: Uint8Array; readonly mode?: number }

/** Host path (absolute, "/"-separated) to entry. Parents are made as needed. */
export type TreeSpec = Readonly<Record<string, TreeEntry>>

export function buildTree(root: string, spec: TreeSpec): string {
  mkdirSync(root, { recursive: true })
  for (const [path, entry] of Object.entries(spec)) {
    const real = join(root, path)
    mkdirSync(dirname(real), { recursive: true })
    if ('dir' in entry) mkdirSync(real, { recursive: true })
    else if ('file' in entry) {
      writeFileSync(real, entry.file)
      chmodSync(real, entry.mode ?? 0o755)
    } else if ('link' in entry) symlinkSync(entry.link, real)
    else if ('fifo' in entry) execFileSync('mkfifo', [real])
    else if ('hardlink' in entry) linkSync(entry.hardlink, real)
    else {
      const fd = openSync(real, 'w', entry.mode ?? 0o755)
      try {
        writeSync(fd, entry.head)
        ftruncateSync(fd, entry.sparse)
      } finally {
        closeSync(fd)
      }
    }
  }
  return root
}

export const LD = '/lib64/ld-linux-x86-64.so.2'
export const DEB_DIR = '/usr/lib/x86_64-linux-gnu'

/** An x86_64 program; PT_INTERP when `interp` is given. Never run by the kernel in these tests (the loader is). */
export function program(interp?: string | Uint8Array, more: CraftOptions = {}): Buffer {
  return craftElf({ machine: EM_X86_64, load: true, ...(interp === undefined ? {} : { interpreter: interp }), ...more })
}

/**
 * A loader the shim accepts and the kernel refuses to run: its own PT_INTERP
 * is "/", a directory, so execve() fails with EACCES after the shim printed
 * its debug lines ("cannot execute: ...: Permission denied", 126).
 * With `argv0` it holds the "--argv0" string of glibc >= 2.33.
 */
export function fakeLoader(argv0 = true): Buffer {
  const elf = craftElf({ machine: EM_X86_64, type: ET_DYN, load: true, interpreter: '/' })
  return Buffer.concat([elf, Buffer.from(argv0 ? '\0--inhibit-cache\0--argv0\0' : '\0--inhibit-cache\0--library-path\0')])
}

/**
 * How a run through fakeLoader() ends, after the debug lines, in each mode:
 * exec mode execs it and the kernel refuses its PT_INTERP "/" (EACCES);
 * chainload mode maps it itself and must refuse, before the jump, a loader
 * it cannot enter as the kernel would enter it (one with a PT_INTERP of its
 * own): ENOEXEC, as for every unusable loader (shim/README.md, section 7a).
 * Both: "NAME: cannot execute: LOADER: ...", 126.
 */
export function fakeLoaderOutcome(mode: ShimMode): Errno {
  return mode === 'chainload' ? 'ENOEXEC' : 'EACCES'
}

/** Real files of this machine, copied once into a suite's scratch dir, for hard links. */
export interface RealFiles {
  /** glibc's loader (Debian 12: glibc 2.36, has --argv0) */
  readonly loader: string
  readonly libc: string
  /** a dynamic program that needs only libc, exits 0 */
  readonly true: string
  /** static busybox: runs anywhere, as any argv[0] ("applet not found" for most) */
  readonly busybox: string
}

export function copyRealFiles(dir: string): RealFiles {
  mkdirSync(dir, { recursive: true })
  const copy = (from: string, name: string) => {
    const to = join(dir, name)
    copyFileSync(from, to)
    chmodSync(to, 0o755)
    return to
  }
  return {
    loader: copy('/lib64/ld-linux-x86-64.so.2', 'ld-linux-x86-64.so.2'),
    libc: copy(`${DEB_DIR}/libc.so.6`, 'libc.so.6'),
    true: copy('/usr/bin/true', 'true'),
    busybox: copy('/bin/busybox', 'busybox'),
  }
}

/** A Debian-style host that can run `/usr/bin/true` for real: loader and libc in the multiarch dir. */
export function workingHost(real: RealFiles, target = '/usr/bin/toolbox'): TreeSpec {
  return {
    [`${DEB_DIR}/ld-linux-x86-64.so.2`]: { hardlink: real.loader },
    [`${DEB_DIR}/libc.so.6`]: { hardlink: real.libc },
    [LD]: { link: `${DEB_DIR}/ld-linux-x86-64.so.2` },
    [target]: { hardlink: real.true },
  }
}

/** The ShimConfig generate bakes in for these fields (x86_64). */
export function shimConfig(fields: ShimFields): ShimConfig {
  return shimConfigOf(validateConfig({ ...fields, arch: 'x86_64' }))
}

/** The plan model over a tree, as the x86_64 shim would run with it at hostRoot. */
export function planTree(config: ShimConfig, tree: string, argv: readonly string[], mode: Mode = 'container', env?: readonly string[]): Plan {
  return planShim(config, ARCHES.x86_64, nodeHostView(tree), { mode, argv, ...(env === undefined ? {} : { env }) })
}
