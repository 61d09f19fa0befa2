// `hostshim plan`: the plan model over a real directory, as JSON.

import { statSync } from 'node:fs'
import { ARCHES } from './arch.js'
import { ORIGIN_PREFIX, originRelative, shimConfigOf, type BuildConfig } from './config.js'
import { IoError, UsageError, ioError, q } from './errors.js'
import { nodeHostView, nodeRuntimeFiles } from './hostview.js'
import { planShim, planToJson, type Mode, type PlanJson } from './plan.js'
import { configForArch } from '../shim/chainload.js'
import { planCacheId } from '../shim/template.js'

/**
 * The plan for a shim of `config` over the tree at `root`. With
 * `runtimeDir` (the caller's XDG_RUNTIME_DIR), a plan the shim kept there
 * is used when its witnesses hold, as the shim would: the root's device
 * and inode are those of `root`, the euid this process's. `origin`: for a
 * `$ORIGIN/...` target, the directory the shim would be in (absolute); the
 * target is then found in this machine's own tree, as the caller of the
 * shim sees it, and the host tree gives loader and libraries.
 */
export function planForRoot(
  config: BuildConfig,
  root: string,
  mode: Mode,
  argv: readonly string[],
  { runtimeDir, origin }: { runtimeDir?: string | undefined; origin?: string | undefined } = {},
): PlanJson {
  if (config.arch.length !== 1) throw new UsageError('plan models one architecture at a time: give --arch ARCH')
  const relative = originRelative(config.target) !== null
  if (relative && origin === undefined) {
    throw new UsageError(`the target ${q(config.target)} is relative to the shim: give --origin DIR, the directory the shim would be in`)
  }
  if (!relative && origin !== undefined) throw new UsageError(`--origin is for a target that begins with ${q(ORIGIN_PREFIX)}; this one is ${q(config.target)}`)
  let rootStat
  try {
    rootStat = statSync(root, { bigint: true })
    if (!rootStat.isDirectory()) throw new IoError(`--root ${q(root)} is not a directory`)
  } catch (error) {
    if (error instanceof IoError) throw error
    throw ioError(`cannot use --root ${q(root)}`, error)
  }
  const arch = ARCHES[config.arch[0] as keyof typeof ARCHES]
  const shim = shimConfigOf(config)
  const env = runtimeDir === undefined ? [] : [`XDG_RUNTIME_DIR=${runtimeDir}`]
  const cache =
    runtimeDir === undefined
      ? {}
      : { cache: { id: planCacheId(configForArch(shim, arch), arch), euid: process.geteuid?.() ?? 0, rootDev: rootStat.dev, rootIno: rootStat.ino, ...nodeRuntimeFiles() } }
  const where = origin === undefined ? {} : { origin, callerView: nodeHostView('/') }
  const plan = planToJson(planShim(shim, arch, nodeHostView(root), { mode, argv, env, ...cache, ...where }))
  // The environment was only the runtime directory's way in: `plan` prints none.
  if ('env' in plan) delete plan.env
  return plan
}
