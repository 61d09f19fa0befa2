// Debian packages for tests, never installed: `apt-get download` into a cache
// directory kept between runs (HOSTSHIM_TEST_DEBS, default
// /var/cache/hostshim-test/debs), then `dpkg-deb -x` into a directory of the
// test's own. dpkg's database is never touched, so nothing lands on the
// machine (installing podman-toolbox would create /run/host).

import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

export const DEB_CACHE = process.env.HOSTSHIM_TEST_DEBS ?? '/var/cache/hostshim-test/debs'

function run(file: string, args: readonly string[], cwd?: string) {
  const r = spawnSync(file, args, { cwd, encoding: 'utf8', timeout: 300_000 })
  return { code: r.status ?? -1, stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
}

/** The cached .deb of `pkg` (downloaded the first time), as a path. */
export function cachedDeb(pkg: string): string {
  const find = () => readdirSync(DEB_CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
  mkdirSync(DEB_CACHE, { recursive: true })
  let deb = find()
  if (deb === undefined) {
    let r = run('apt-get', ['download', pkg], DEB_CACHE)
    if (r.code !== 0 && /Unable to locate package|has no installation candidate/.test(r.stderr)) {
      // Package lists cleaned (a fresh CI machine): fetch them, as .ci/setup does.
      run('apt-get', ['update', '-qq'])
      r = run('apt-get', ['download', pkg], DEB_CACHE)
    }
    if (r.code !== 0) throw new Error(`apt-get download ${pkg} failed:\n${r.stderr}`)
    deb = find()
    if (deb === undefined) throw new Error(`apt-get download left no ${pkg} .deb in ${DEB_CACHE}`)
  }
  return join(DEB_CACHE, deb)
}

/** Unpack `pkg` into `dir` (dpkg-deb -x); returns dir. */
export function unpackDeb(pkg: string, dir: string): string {
  const r = run('dpkg-deb', ['-x', cachedDeb(pkg), dir])
  if (r.code !== 0) throw new Error(`dpkg-deb -x failed:\n${r.stderr}`)
  return dir
}
