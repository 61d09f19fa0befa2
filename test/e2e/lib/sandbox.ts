// Containers and hosts for the matrix, made with bubblewrap.
//
// Every mount happens inside bwrap's private mount namespace and dies with
// it. Container roots and host trees are bound read-only: a cached Debian
// tree is never written to, and bwrap cannot create mount points in it (the
// places it mounts on, /tmp, /run and /usr/local/bin, exist in every tree
// and get a fresh tmpfs first).

import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { HOST_ROOT, type View } from './ldso.js'
import { run, type RunResult } from './sys.js'

export const BWRAP = '/usr/bin/bwrap'
export const BUSYBOX = '/bin/busybox'

/** The whole environment of every program the matrix runs. */
export const RUN_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
  HOME: '/root',
  LC_ALL: 'C',
}

/** Where shims live inside a container: a tmpfs, on PATH. */
export const SHIM_DIR = '/usr/local/bin'

/**
 * A busybox root like the `busybox` image: one static busybox, its applets,
 * root in /etc/passwd and /etc/group, no libc and no loader.
 */
export async function makeBusyboxRoot(dir: string): Promise<string> {
  for (const d of ['bin', 'etc', 'proc', 'dev', 'sys', 'tmp', 'run', 'root', 'usr/local/bin']) {
    await mkdir(join(dir, d), { recursive: true })
  }
  await copyFile(BUSYBOX, join(dir, 'bin/busybox'))
  await chmod(join(dir, 'bin/busybox'), 0o755)
  for (const applet of ['sh', 'ls', 'id', 'cat', 'env']) await symlink('busybox', join(dir, 'bin', applet))
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\n')
  return dir
}

export interface Sandbox {
  /** machine directory that becomes `/` */
  readonly root: string
  /** machine directory seen at /run/host; null: none */
  readonly hostRoot: string | null
  /** machine files bound read-only at SHIM_DIR/NAME: [source, NAME] */
  readonly shims?: readonly (readonly [string, string])[]
  /**
   * machine directories that must appear at the same path inside the host
   * tree (the unpacked Toolbx binary), all under /tmp: bound at the same
   * path on the sandbox's own /tmp, and, when the host is not the machine's
   * `/`, over a tmpfs on the host tree's /tmp.
   */
  readonly payloads?: readonly string[]
  /** a Toolbx host's `/run/host -> ../` symlink (on a tmpfs /run) */
  readonly runHostSymlink?: boolean
}

/** The view of a sandbox, for the direct-run oracle. */
export function viewOf(box: Sandbox): View {
  const binds: [string, string][] = []
  for (const p of box.payloads ?? []) {
    binds.push([p, p])
    if (box.hostRoot !== null && box.hostRoot !== '/') binds.push([p, `${HOST_ROOT}${p}`])
  }
  return { root: box.root, hostRoot: box.runHostSymlink ? box.root : box.hostRoot, binds }
}

export function bwrapArgs(box: Sandbox, argv: readonly string[]): string[] {
  const args = [
    '--die-with-parent',
    '--ro-bind', box.root, '/',
    '--proc', '/proc',
    '--dev', '/dev',
    // Toolbx's binary reads the cgroup version at start-up, as in a real container.
    '--ro-bind', '/sys', '/sys',
    '--tmpfs', '/tmp',
    '--tmpfs', '/run',
    '--tmpfs', SHIM_DIR,
  ]
  // Payloads at their own path too (on the fresh /tmp): a host tree run as
  // `/` finds its program where the host would.
  for (const p of box.payloads ?? []) {
    if (!p.startsWith('/tmp/')) throw new Error(`payload ${p} is not under /tmp`)
    args.push('--ro-bind', p, p)
  }
  if (box.hostRoot !== null) {
    args.push('--ro-bind', box.hostRoot, HOST_ROOT)
    if (box.hostRoot !== '/' && (box.payloads ?? []).length > 0) {
      args.push('--tmpfs', `${HOST_ROOT}/tmp`)
      for (const p of box.payloads ?? []) args.push('--ro-bind', p, `${HOST_ROOT}${p}`)
    }
  }
  if (box.runHostSymlink) args.push('--symlink', '../', HOST_ROOT)
  for (const [src, name] of box.shims ?? []) args.push('--ro-bind', src, `${SHIM_DIR}/${name}`)
  return [...args, '--chdir', '/', '--', ...argv]
}

/**
 * Run argv with exactly RUN_ENV (plus extra variables), through `env -i`:
 * tap's process tracking adds NODE_OPTIONS to every child it sees spawned,
 * and a node inside a container must not get it.
 */
function runClean(argv: readonly string[], extraEnv: Record<string, string>): Promise<RunResult> {
  const vars = Object.entries({ ...RUN_ENV, ...extraEnv }).map(([k, v]) => `${k}=${v}`)
  return run('/usr/bin/env', ['-i', ...vars, ...argv], { env: {}, timeoutMs: 60_000 })
}

/** Run argv in the sandbox. */
export function runIn(box: Sandbox, argv: readonly string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
  return runClean([BWRAP, ...bwrapArgs(box, argv)], extraEnv)
}

/** Run argv on the machine itself, outside any namespace. */
export function runOnMachine(argv: readonly string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
  return runClean(argv, extraEnv)
}
