// Real Debian trees for the glibc matrix, built with debootstrap and cached.
//
// The mirror comes from this machine's apt configuration, read at run time
// (HOSTSHIM_E2E_MIRROR overrides it). Each suite is debootstrapped into a
// temporary directory inside the cache, inside a private mount namespace
// (debootstrap mounts /proc and /sys in the target), then renamed into place:
// a tree is either complete or absent, and an interrupted run leaves only a
// temporary directory that the next run removes.

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mountsUnder, mustRun, removeTree, run } from './sys.js'

export const CACHE_DIR = process.env.HOSTSHIM_E2E_CACHE || '/var/cache/hostshim-e2e'

/** Marks a tree as complete; written before the rename. */
const COMPLETE = '.hostshim-e2e-complete'

interface SourceEntry {
  readonly uris: string[]
  readonly suites: string[]
  readonly types: string[]
}

/** Parse deb822 .sources files and one-line sources.list files. */
function aptSources(): SourceEntry[] {
  const entries: SourceEntry[] = []
  const files: string[] = []
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list')
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) {
      if (f.endsWith('.sources') || f.endsWith('.list')) files.push(join('/etc/apt/sources.list.d', f))
    }
  }
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>()
        let last = ''
        for (const line of stanza.split('\n')) {
          if (line.startsWith('#')) continue
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line)
          if (m) {
            last = (m[1] as string).toLowerCase()
            fields.set(last, m[2] as string)
          } else if (/^\s/.test(line) && last) {
            fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`)
          }
        }
        if (fields.get('enabled')?.trim() === 'no') continue
        const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean)
        entries.push({ uris: words('uris'), suites: words('suites'), types: words('types') })
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim()
        const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line)
        if (m) entries.push({ types: [m[1] as string], uris: [m[2] as string], suites: [m[3] as string] })
      }
    }
  }
  return entries
}

/**
 * The Debian mirror apt uses on this machine: the URI of the first `deb`
 * source that carries a plain suite (not -security, -updates or -backports).
 */
export function debianMirror(): string {
  if (process.env.HOSTSHIM_E2E_MIRROR) return process.env.HOSTSHIM_E2E_MIRROR
  for (const e of aptSources()) {
    if (!e.types.includes('deb')) continue
    if (!e.suites.some((s) => /^[a-z]+$/.test(s))) continue
    const uri = e.uris.find((u) => /^https?:\/\//.test(u))
    if (uri) return uri.replace(/\/+$/, '')
  }
  throw new Error('no Debian mirror in /etc/apt/sources.list{,.d}: set HOSTSHIM_E2E_MIRROR=http://.../debian')
}

export interface Tree {
  readonly suite: string
  readonly root: string
  /** built by this call (false: taken from the cache) */
  readonly built: boolean
  readonly ms: number
}

/** Remove temporary directories that an interrupted run left in the cache. */
async function removeStale(suite: string, log: (s: string) => void): Promise<void> {
  if (!existsSync(CACHE_DIR)) return
  for (const name of readdirSync(CACHE_DIR)) {
    if (!name.startsWith(`.${suite}.tmp-`)) continue
    const dir = join(CACHE_DIR, name)
    // A concurrent run may be building into it: only stale ones are old.
    const age = Date.now() - startedAt(dir)
    if (age < 60 * 60_000) continue
    if (mountsUnder(dir).length > 0) {
      log(`leaving ${dir}: something is mounted below it`)
      continue
    }
    log(`removing stale ${dir}`)
    await removeTree(dir)
  }
}

/** When a build began (0 when unknown: treated as stale). */
function startedAt(dir: string): number {
  try {
    return Number(readFileSync(join(dir, '.started'), 'utf8')) || 0
  } catch {
    return 0
  }
}

/**
 * The cached tree for a suite, building it when missing. Concurrent builders
 * are harmless: the first rename wins and the loser removes its copy.
 */
export async function debianTree(suite: string, log: (s: string) => void = () => {}): Promise<Tree> {
  const started = Date.now()
  const root = join(CACHE_DIR, suite)
  if (existsSync(join(root, COMPLETE))) return { suite, root, built: false, ms: Date.now() - started }
  if (existsSync(root)) {
    throw new Error(`${root} exists but is not a complete tree (no ${COMPLETE}); remove it by hand after checking nothing is mounted below it`)
  }
  await mkdir(CACHE_DIR, { recursive: true, mode: 0o755 })
  await removeStale(suite, log)
  const tmp = await mkdtemp(join(CACHE_DIR, `.${suite}.tmp-`))
  try {
    await writeFile(join(tmp, '.started'), String(Date.now()))
    const mirror = debianMirror()
    log(`debootstrap --variant=minbase ${suite} from ${mirror} (a cold run: a few minutes)`)
    // Private mount namespace: debootstrap's /proc and /sys mounts in the
    // target die with it, and never show up on the machine. A tmpfs on /run
    // there keeps mount(8)'s bookkeeping (/run/mount) off the machine's /run.
    await mustRun(
      'unshare',
      [
        '--mount', '--propagation', 'private', '--fork',
        'sh', '-c', 'mount -n -t tmpfs -o mode=0755 hostshim-e2e /run && exec debootstrap "$@"', 'sh',
        '--variant=minbase', suite, join(tmp, 'root'), mirror,
      ],
      { timeoutMs: 20 * 60_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
    )
    const live = mountsUnder(tmp)
    if (live.length > 0) throw new Error(`debootstrap left mounts behind: ${live.join(', ')}`)
    // apt's downloaded .debs are not needed any more: keep the cache small.
    await run('find', [join(tmp, 'root', 'var/cache/apt/archives'), '-name', '*.deb', '-delete'])
    await writeFile(join(tmp, 'root', COMPLETE), `${suite} from ${mirror}\n`)
    try {
      await rename(join(tmp, 'root'), root)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(join(root, COMPLETE))) {
        log(`${suite}: another run finished first; using its tree`)
        return { suite, root, built: false, ms: Date.now() - started }
      }
      throw error
    }
    return { suite, root, built: true, ms: Date.now() - started }
  } finally {
    await removeTree(tmp)
  }
}

/** glibc's version in a tree, from its libc.so.6 (e.g. "2.31"). */
export async function glibcVersion(root: string): Promise<string> {
  for (const dir of ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', 'usr/lib64', 'lib64']) {
    const libc = join(root, dir, 'libc.so.6')
    if (!existsSync(libc)) continue
    // The string "GNU C Library (Debian GLIBC 2.31-13+deb11u5) stable release version 2.31."
    const r = await run('grep', ['-a', '-o', '-m1', 'release version [0-9.]*[0-9]', libc])
    const m = /release version ([0-9.]+)/.exec(r.stdout)
    if (m) return m[1] as string
  }
  throw new Error(`no libc.so.6 in ${root}`)
}
