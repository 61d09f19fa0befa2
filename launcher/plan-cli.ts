// `hostshim plan`: the plan model over a real directory, as JSON.

import { statSync } from 'node:fs'
import { ARCHES } from './arch.js'
import { shimConfigOf, type BuildConfig } from './config.js'
import { IoError, UsageError, ioError, q } from './errors.js'
import { nodeHostView, nodeRuntimeFiles } from './hostview.js'
import { planShim, planToJson, type Mode, type PlanJson } from './plan.js'
import { configForArch } from '../shim/chainload.js'
import { planCacheId } from '../shim/template.js'

/**
 * The plan for a shim of `config` over the tree at `root`. With
 * `runtimeDir` (the caller's XDG_RUNTIME_DIR), a plan the shim kept there
 * is used when its witnesses hold, as the shim would: the root's device
 * and inode are those of `root`, the euid this process's.
 */
export function planForRoot(config: BuildConfig, root: string, mode: Mode, argv: readonly string[], runtimeDir?: string): PlanJson {
  if (config.arch.length !== 1) throw new UsageError('plan models one architecture at a time: give --arch ARCH')
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
  const plan = planToJson(planShim(shim, arch, nodeHostView(root), { mode, argv, env, ...cache }))
  // The environment was only the runtime directory's way in: `plan` prints none.
  if ('env' in plan) delete plan.env
  return plan
}
