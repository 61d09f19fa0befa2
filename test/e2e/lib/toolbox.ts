// Debian's real Toolbx binary, from the podman-toolbox package: downloaded
// with apt-get download and unpacked with dpkg -x into a directory of the
// test's own. Nothing is installed: dpkg's database is never touched.

import { existsSync, readdirSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { mustRun, run } from './sys.js'

export const TOOLBOX_PACKAGE = 'podman-toolbox'

export interface Toolbox {
  /** the unpacked package's root */
  readonly dir: string
  /** the binary, DIR/usr/bin/toolbox */
  readonly binary: string
  /** the .deb's file name */
  readonly deb: string
  /** the binary's PT_INTERP */
  readonly interp: string
}

/** Download and unpack podman-toolbox into `dir` (which must not exist yet). */
export async function unpackToolbox(dir: string): Promise<Toolbox> {
  const download = `${dir}.deb.d`
  await mkdir(download, { recursive: true })
  let r = await run('apt-get', ['download', TOOLBOX_PACKAGE], { cwd: download })
  if (r.code !== 0 && /Unable to locate package|has no installation candidate/.test(r.stderr)) {
    // A machine whose package lists were cleaned: fetch them, as .ci/setup does.
    await mustRun('apt-get', ['update', '-qq'])
    r = await run('apt-get', ['download', TOOLBOX_PACKAGE], { cwd: download })
  }
  if (r.code !== 0) throw new Error(`apt-get download ${TOOLBOX_PACKAGE} failed:\n${r.stderr}`)
  const deb = readdirSync(download).find((f) => f.startsWith(`${TOOLBOX_PACKAGE}_`) && f.endsWith('.deb'))
  if (!deb) throw new Error(`apt-get download left no ${TOOLBOX_PACKAGE} .deb in ${download}`)
  await mustRun('dpkg', ['-x', join(download, deb), dir])
  const binary = join(dir, 'usr/bin/toolbox')
  if (!existsSync(binary)) throw new Error(`${deb} has no usr/bin/toolbox`)
  const elf = await mustRun('readelf', ['-W', '-l', binary], { env: { ...process.env, LC_ALL: 'C' } })
  const interp = /\[Requesting program interpreter: (.*)\]/.exec(elf.stdout)?.[1]
  if (!interp) throw new Error(`${binary} has no PT_INTERP`)
  return { dir, binary, deb, interp }
}
