// `hostshim plan`: the plan model over a real directory, as JSON.

import { statSync } from 'node:fs'
import { ARCHES } from './arch.js'
import { shimConfigOf, type BuildConfig } from './config.js'
import { IoError, UsageError, ioError, q } from './errors.js'
import { nodeHostView } from './hostview.js'
import { planShim, planToJson, type Mode, type PlanJson } from './plan.js'

export function planForRoot(config: BuildConfig, root: string, mode: Mode, argv: readonly string[]): PlanJson {
  if (config.arch.length !== 1) throw new UsageError('plan models one architecture at a time: give --arch ARCH')
  try {
    if (!statSync(root).isDirectory()) throw new IoError(`--root ${q(root)} is not a directory`)
  } catch (error) {
    if (error instanceof IoError) throw error
    throw ioError(`cannot use --root ${q(root)}`, error)
  }
  const arch = ARCHES[config.arch[0] as keyof typeof ARCHES]
  return planToJson(planShim(shimConfigOf(config), arch, nodeHostView(root), { mode, argv }))
}
