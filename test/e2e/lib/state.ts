// What the end-to-end tests must leave exactly as they found it: the mount
// table, /run/host, the podman-toolbox package, and the global places a
// container engine or mount(8) would write to.
//
// `npm run test:e2e` records a baseline before any test file runs
// (test/e2e/lib/baseline.ts, tap's --before); every test file compares the
// machine with its own snapshot when it ends, and the last file
// (zz-machine.test.ts) compares the machine with the baseline.

import { existsSync, lstatSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CACHE_DIR } from './debian.js'
import { TOOLBOX_PACKAGE } from './toolbox.js'
import { dpkgInstalled, mountPoints } from './sys.js'

/** Paths that must neither appear nor vanish. */
export const WATCHED_PATHS = [
  '/run/host', // Toolbx's host symlink: the whole point is not needing it
  '/run/mount', // mount(8)'s utab directory
  '/run/runc', // runc's default state root
  '/run/crun',
  '/run/containers', // podman/netavark run-time state
  '/run/libpod',
  '/var/lib/containers', // podman's global storage and blob cache
  '/var/lib/cni',
  '/etc/containers/networks',
] as const

export interface MachineState {
  readonly mounts: string[]
  readonly paths: Record<string, boolean>
  readonly packages: Record<string, boolean>
}

function exists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

export async function snapshot(): Promise<MachineState> {
  const paths: Record<string, boolean> = {}
  for (const p of WATCHED_PATHS) paths[p] = exists(p)
  return {
    mounts: mountPoints().sort(),
    paths,
    packages: { [TOOLBOX_PACKAGE]: await dpkgInstalled(TOOLBOX_PACKAGE) },
  }
}

/**
 * Where the tests' own mounts would land if one ever escaped its private
 * namespace: the temp dirs, the tree cache, and the places the podman and
 * debootstrap namespaces cover with a tmpfs. A change elsewhere in the mount
 * table (another process on a shared machine mounting tracefs, say) is
 * reported by otherMountChanges, not counted against the tests.
 */
export function isTestMountPlace(mountPoint: string): boolean {
  return ['/', '/tmp', '/var/tmp', '/run', '/var/lib', CACHE_DIR].some(
    (p) => mountPoint === p || (p !== '/' && mountPoint.startsWith(`${p}/`)),
  )
}

function mountChanges(before: MachineState, after: MachineState): string[] {
  const out: string[] = []
  const count = (list: string[]) => list.reduce((m, p) => m.set(p, (m.get(p) ?? 0) + 1), new Map<string, number>())
  const b = count(before.mounts)
  const a = count(after.mounts)
  for (const [p, n] of a) if (n > (b.get(p) ?? 0)) out.push(`new mount at ${p}`)
  for (const [p, n] of b) if (n > (a.get(p) ?? 0)) out.push(`mount gone from ${p}`)
  return out
}

const mountPointOf = (change: string) => change.replace(/^(new mount at|mount gone from) /, '')

/** Mount table changes outside the places the tests could mount on. */
export function otherMountChanges(before: MachineState, after: MachineState): string[] {
  return mountChanges(before, after).filter((c) => !isTestMountPlace(mountPointOf(c)))
}

/** Differences between two snapshots that the tests answer for, one sentence each; empty when equal. */
export function differences(before: MachineState, after: MachineState): string[] {
  const out = mountChanges(before, after).filter((c) => isTestMountPlace(mountPointOf(c)))
  for (const [p, was] of Object.entries(before.paths)) {
    const is = after.paths[p] ?? false
    if (was !== is) out.push(`${p} ${is ? 'appeared' : 'vanished'}`)
  }
  for (const [pkg, was] of Object.entries(before.packages)) {
    const is = after.packages[pkg] ?? false
    if (was !== is) out.push(`package ${pkg} ${is ? 'got installed' : 'got removed'}`)
  }
  return out
}

/** Mount points below the temp and cache directories the tests use. */
export function mountsInTestDirs(): string[] {
  return mountPoints().filter((m) => m.startsWith('/tmp/') || m === CACHE_DIR || m.startsWith(`${CACHE_DIR}/`))
}

const here = dirname(fileURLToPath(import.meta.url))
export const OUT_DIR = join(here, '../../../out')
export const BASELINE_FILE = join(OUT_DIR, 'e2e-baseline.json')

export async function writeBaseline(): Promise<MachineState> {
  const state = await snapshot()
  await mkdir(OUT_DIR, { recursive: true })
  await writeFile(BASELINE_FILE, `${JSON.stringify({ at: new Date().toISOString(), state }, null, 2)}\n`)
  return state
}

export function readBaseline(): MachineState | null {
  if (!existsSync(BASELINE_FILE)) return null
  return (JSON.parse(readFileSync(BASELINE_FILE, 'utf8')) as { state: MachineState }).state
}
